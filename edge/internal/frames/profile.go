package frames

import (
	"encoding/json"
	"strconv"

	profilev1 "github.com/charla/charla/proto/gen/profile/v1"
)

// ProfileData is a profile as seen by its viewer (docs/protocol.md §6.4).
type ProfileData struct {
	ID          int64      `json:"id"`
	UserName    string     `json:"userName"`
	FirstName   string     `json:"firstName"`
	LastName    string     `json:"lastName"`
	Email       string     `json:"email"`
	Phone       string     `json:"phone"`
	Picture     string     `json:"picture"`
	Summary     string     `json:"summary"`
	CountryID   int32      `json:"countryId"`
	CountryName string     `json:"countryName"`
	IsOnline    bool       `json:"isOnline"`
	LastSeen    int64      `json:"lastSeen"`
	Curriculum  Curriculum `json:"curriculum"`
}

// Curriculum holds the six sections, each a list that is never null.
type Curriculum struct {
	Education      []Education     `json:"education"`
	Experience     []Experience    `json:"experience"`
	Certifications []Certification `json:"certifications"`
	Skills         []Skill         `json:"skills"`
	Languages      []Language      `json:"languages"`
	Projects       []Project       `json:"projects"`
}

// Education is one education item.
type Education struct {
	ID             string `json:"id"`
	Institution    string `json:"institution"`
	Degree         string `json:"degree"`
	FieldOfStudy   string `json:"fieldOfStudy"`
	Campus         string `json:"campus"`
	StartDate      string `json:"startDate"`
	GraduationDate string `json:"graduationDate"`
	CountryID      int32  `json:"countryId"`
	CountryName    string `json:"countryName"`
}

// Experience is one work experience item.
type Experience struct {
	ID          string `json:"id"`
	Company     string `json:"company"`
	Position    string `json:"position"`
	Description string `json:"description"`
	StartDate   string `json:"startDate"`
	EndDate     string `json:"endDate"`
	CountryID   int32  `json:"countryId"`
	CountryName string `json:"countryName"`
}

// Certification is one certification item.
type Certification struct {
	ID            string `json:"id"`
	Name          string `json:"name"`
	Issuer        string `json:"issuer"`
	IssueDate     string `json:"issueDate"`
	CredentialURL string `json:"credentialUrl"`
}

// Skill is one skill item.
type Skill struct {
	ID    string `json:"id"`
	Name  string `json:"name"`
	Level int32  `json:"level"`
}

// Language is one language item.
type Language struct {
	ID          string `json:"id"`
	Name        string `json:"name"`
	Proficiency string `json:"proficiency"`
}

// Project is one project item.
type Project struct {
	ID          string `json:"id"`
	Name        string `json:"name"`
	Description string `json:"description"`
	URL         string `json:"url"`
	StartDate   string `json:"startDate"`
	EndDate     string `json:"endDate"`
}

// ProfileFrom converts a profile.
func ProfileFrom(p *profilev1.ProfileData) ProfileData {
	cv := p.GetCurriculum()
	out := ProfileData{
		ID:          p.GetId(),
		UserName:    p.GetUserName(),
		FirstName:   p.GetFirstName(),
		LastName:    p.GetLastName(),
		Email:       p.GetEmail(),
		Phone:       p.GetPhone(),
		Picture:     p.GetPicture(),
		Summary:     p.GetSummary(),
		CountryID:   p.GetCountryId(),
		CountryName: p.GetCountryName(),
		IsOnline:    p.GetIsOnline(),
		LastSeen:    p.GetLastSeen(),
		Curriculum: Curriculum{
			Education:      make([]Education, 0, len(cv.GetEducation())),
			Experience:     make([]Experience, 0, len(cv.GetExperience())),
			Certifications: make([]Certification, 0, len(cv.GetCertifications())),
			Skills:         make([]Skill, 0, len(cv.GetSkills())),
			Languages:      make([]Language, 0, len(cv.GetLanguages())),
			Projects:       make([]Project, 0, len(cv.GetProjects())),
		},
	}
	for _, e := range cv.GetEducation() {
		out.Curriculum.Education = append(out.Curriculum.Education, Education{
			ID: FormatID(e.GetId()), Institution: e.GetInstitution(), Degree: e.GetDegree(),
			FieldOfStudy: e.GetFieldOfStudy(), Campus: e.GetCampus(), StartDate: e.GetStartDate(),
			GraduationDate: e.GetGraduationDate(), CountryID: e.GetCountryId(), CountryName: e.GetCountryName(),
		})
	}
	for _, e := range cv.GetExperience() {
		out.Curriculum.Experience = append(out.Curriculum.Experience, Experience{
			ID: FormatID(e.GetId()), Company: e.GetCompany(), Position: e.GetPosition(),
			Description: e.GetDescription(), StartDate: e.GetStartDate(), EndDate: e.GetEndDate(),
			CountryID: e.GetCountryId(), CountryName: e.GetCountryName(),
		})
	}
	for _, c := range cv.GetCertifications() {
		out.Curriculum.Certifications = append(out.Curriculum.Certifications, Certification{
			ID: FormatID(c.GetId()), Name: c.GetName(), Issuer: c.GetIssuer(),
			IssueDate: c.GetIssueDate(), CredentialURL: c.GetCredentialUrl(),
		})
	}
	for _, s := range cv.GetSkills() {
		out.Curriculum.Skills = append(out.Curriculum.Skills, Skill{ID: FormatID(s.GetId()), Name: s.GetName(), Level: s.GetLevel()})
	}
	for _, l := range cv.GetLanguages() {
		out.Curriculum.Languages = append(out.Curriculum.Languages, Language{ID: FormatID(l.GetId()), Name: l.GetName(), Proficiency: l.GetProficiency()})
	}
	for _, p := range cv.GetProjects() {
		out.Curriculum.Projects = append(out.Curriculum.Projects, Project{
			ID: FormatID(p.GetId()), Name: p.GetName(), Description: p.GetDescription(),
			URL: p.GetUrl(), StartDate: p.GetStartDate(), EndDate: p.GetEndDate(),
		})
	}
	return out
}

// updateKeys are the only keys UPDATE_MY_PROFILE accepts (docs/protocol.md §4.10).
var updateKeys = []string{"firstName", "lastName", "phone", "picture", "summary", "countryId", "curriculum"}

var sectionKeys = []string{"education", "experience", "certifications", "skills", "languages", "projects"}

// readOnlyItemKeys may be echoed back in curriculum items and are ignored (id is used to
// keep an item).
var readOnlyItemKeys = []string{"id", "countryName"}

var itemKeys = map[string][]string{
	"education":      {"institution", "degree", "fieldOfStudy", "campus", "startDate", "graduationDate", "countryId"},
	"experience":     {"company", "position", "description", "startDate", "endDate", "countryId"},
	"certifications": {"name", "issuer", "issueDate", "credentialUrl"},
	"skills":         {"name", "level"},
	"languages":      {"name", "proficiency"},
	"projects":       {"name", "description", "url", "startDate", "endDate"},
}

func unknownError(prefix string, keys []string) *Error {
	if len(keys) == 1 {
		return Invalid("unknown field %q", prefix+keys[0])
	}
	names := ""
	for i, k := range keys {
		if i > 0 {
			names += ", "
		}
		names += strconv.Quote(prefix + k)
	}
	return Invalid("unknown fields %s", names)
}

// ParseUpdateProfile decodes UPDATE_MY_PROFILE into a request for userID. It checks the
// shape (known keys, JSON types); the profile service checks the values.
func ParseUpdateProfile(raw json.RawMessage, userID int64) (*profilev1.UpdateProfileRequest, *Error) {
	o, err := ParseObject(raw, "payload")
	if err != nil {
		return nil, err
	}
	if unk := o.Unknown(updateKeys...); len(unk) > 0 {
		return nil, unknownError("", unk)
	}
	req := &profilev1.UpdateProfileRequest{UserId: userID}
	if req.FirstName, err = o.String("firstName"); err != nil {
		return nil, err
	}
	if req.LastName, err = o.String("lastName"); err != nil {
		return nil, err
	}
	if req.Phone, err = o.String("phone"); err != nil {
		return nil, err
	}
	if req.Picture, err = o.String("picture"); err != nil {
		return nil, err
	}
	if req.Summary, err = o.String("summary"); err != nil {
		return nil, err
	}
	if req.CountryId, err = o.Int32("countryId"); err != nil {
		return nil, err
	}
	if !o.Has("curriculum") {
		return req, nil
	}
	cv, err := ParseObject(o["curriculum"], "curriculum")
	if err != nil {
		return nil, err
	}
	if unk := cv.Unknown(sectionKeys...); len(unk) > 0 {
		return nil, unknownError("curriculum.", unk)
	}
	for _, section := range sectionKeys {
		items, present, err := cv.Array(section)
		if err != nil {
			err.Message = "curriculum." + err.Message
			return nil, err
		}
		if !present {
			continue
		}
		if err := parseSection(req, section, items); err != nil {
			return nil, err
		}
	}
	return req, nil
}

// itemReader reads the fields of one curriculum item, keeping the first error, so that
// each section's conversion reads as a plain list of fields.
type itemReader struct {
	o      Object
	prefix string
	err    *Error
}

func (r *itemReader) fail(e *Error) {
	if r.err == nil && e != nil {
		e.Message = r.prefix + e.Message
		r.err = e
	}
}

func (r *itemReader) str(key string) string {
	s, err := r.o.String(key)
	r.fail(err)
	if s == nil {
		return ""
	}
	return *s
}

// optInt32 reads an optional integer: nil when absent or null, so that an explicit 0 stays
// distinguishable from "not given".
func (r *itemReader) optInt32(key string) *int32 {
	n, err := r.o.Int32(key)
	r.fail(err)
	return n
}

func (r *itemReader) int32(key string) int32 {
	n, err := r.o.Int32(key)
	r.fail(err)
	if n == nil {
		return 0
	}
	return *n
}

// id reads an item id: a decimal string as the server sends it, or a JSON integer; absent,
// null, "" and 0 mean a new item.
func (r *itemReader) id() int64 {
	raw := r.o.get("id")
	if raw == nil {
		return 0
	}
	if raw[0] == '"' {
		var s string
		if json.Unmarshal(raw, &s) == nil {
			if s == "" {
				return 0
			}
			if n, ok := ParseID(s); ok {
				return n
			}
		}
	} else if n, ok := parseInteger(raw); ok && n >= 0 {
		return n
	}
	r.fail(Invalid("id must be a positive decimal id"))
	return 0
}

func parseSection(req *profilev1.UpdateProfileRequest, section string, items []json.RawMessage) *Error {
	allowed := append(append([]string{}, itemKeys[section]...), readOnlyItemKeys...)
	readers := make([]*itemReader, 0, len(items))
	for i, raw := range items {
		prefix := "curriculum." + section + "[" + strconv.Itoa(i) + "]"
		o, err := ParseObject(raw, prefix)
		if err != nil {
			return err
		}
		if len(raw) == 0 || string(raw) == "null" {
			return Invalid("%s must be an object", prefix)
		}
		if unk := o.Unknown(allowed...); len(unk) > 0 {
			return unknownError(prefix+".", unk)
		}
		readers = append(readers, &itemReader{o: o, prefix: prefix + "."})
	}
	switch section {
	case "education":
		s := &profilev1.EducationSection{Items: make([]*profilev1.EducationItem, 0, len(readers))}
		for _, r := range readers {
			s.Items = append(s.Items, &profilev1.EducationItem{
				Id: r.id(), Institution: r.str("institution"), Degree: r.str("degree"),
				FieldOfStudy: r.str("fieldOfStudy"), Campus: r.str("campus"), StartDate: r.str("startDate"),
				GraduationDate: r.str("graduationDate"), CountryId: r.int32("countryId"),
			})
			if r.err != nil {
				return r.err
			}
		}
		req.Education = s
	case "experience":
		s := &profilev1.ExperienceSection{Items: make([]*profilev1.ExperienceItem, 0, len(readers))}
		for _, r := range readers {
			s.Items = append(s.Items, &profilev1.ExperienceItem{
				Id: r.id(), Company: r.str("company"), Position: r.str("position"),
				Description: r.str("description"), StartDate: r.str("startDate"), EndDate: r.str("endDate"),
				CountryId: r.int32("countryId"),
			})
			if r.err != nil {
				return r.err
			}
		}
		req.Experience = s
	case "certifications":
		s := &profilev1.CertificationSection{Items: make([]*profilev1.CertificationItem, 0, len(readers))}
		for _, r := range readers {
			s.Items = append(s.Items, &profilev1.CertificationItem{
				Id: r.id(), Name: r.str("name"), Issuer: r.str("issuer"),
				IssueDate: r.str("issueDate"), CredentialUrl: r.str("credentialUrl"),
			})
			if r.err != nil {
				return r.err
			}
		}
		req.Certifications = s
	case "skills":
		s := &profilev1.SkillSection{Items: make([]*profilev1.SkillItem, 0, len(readers))}
		for _, r := range readers {
			// A level is optional, and 1–5 when given: pass absent on as absent, so the
			// profile service can refuse an explicit 0 (docs/protocol.md §4.10).
			s.Items = append(s.Items, &profilev1.SkillItem{Id: r.id(), Name: r.str("name"), Level: r.optInt32("level")})
			if r.err != nil {
				return r.err
			}
		}
		req.Skills = s
	case "languages":
		s := &profilev1.LanguageSection{Items: make([]*profilev1.LanguageItem, 0, len(readers))}
		for _, r := range readers {
			s.Items = append(s.Items, &profilev1.LanguageItem{Id: r.id(), Name: r.str("name"), Proficiency: r.str("proficiency")})
			if r.err != nil {
				return r.err
			}
		}
		req.Languages = s
	case "projects":
		s := &profilev1.ProjectSection{Items: make([]*profilev1.ProjectItem, 0, len(readers))}
		for _, r := range readers {
			s.Items = append(s.Items, &profilev1.ProjectItem{
				Id: r.id(), Name: r.str("name"), Description: r.str("description"),
				Url: r.str("url"), StartDate: r.str("startDate"), EndDate: r.str("endDate"),
			})
			if r.err != nil {
				return r.err
			}
		}
		req.Projects = s
	}
	return nil
}
