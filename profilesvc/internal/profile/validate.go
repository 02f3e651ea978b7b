package profile

import (
	"fmt"
	"net/url"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	profilev1 "github.com/charla/charla/proto/gen/profile/v1"
)

// Limits of docs/protocol.md §4.10 and §7.3.
const (
	MaxNameLen        = 100  // firstName, lastName, in code points
	MaxSummaryLen     = 2000 // summary, in code points
	MaxTitleLen       = 200  // item names and titles, in code points
	MaxDescriptionLen = 2000 // item descriptions, in code points
	MaxEmailLen       = 254  // bytes
	MaxPhoneLen       = 32   // characters
	MaxURLLen         = 2048 // bytes
	MaxItems          = 50   // items per curriculum section
	MinUserNameLen    = 3
	MaxUserNameLen    = 32
	MinSkillLevel     = 1 // a skill's level, when given
	MaxSkillLevel     = 5

	// DefaultSessionTTL is the lifetime of a session created with ttlSeconds 0.
	DefaultSessionTTL = 30 * 24 * time.Hour
	// MaxSessionTTL is the longest lifetime a session may be given.
	MaxSessionTTL = 365 * 24 * time.Hour
)

// Proficiencies are the language levels, weakest first.
var Proficiencies = []string{"basic", "intermediate", "advanced", "native"}

// FoldUserName lower-cases the ASCII letters of a userName. Only ASCII is folded: Unicode
// folding would turn the Kelvin sign into a valid "k" and let look-alike names through.
func FoldUserName(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + ('a' - 'A')
		}
	}
	return string(b)
}

// CheckUserName validates a folded userName.
func CheckUserName(s string) error {
	if n := len(s); n < MinUserNameLen || n > MaxUserNameLen {
		return Errorf(CodeInvalid, "userName: want %d to %d characters, got %d", MinUserNameLen, MaxUserNameLen, utf8.RuneCountInString(s))
	}
	for _, c := range []byte(s) {
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '_' || c == '.' || c == '-') {
			return Errorf(CodeInvalid, "userName: only letters a-z, digits and _ . - are allowed")
		}
	}
	return nil
}

// CheckEmail validates an email address: at most 254 bytes, exactly one @ with something
// on both sides, no white space, control or quoting characters.
func CheckEmail(s string) error {
	switch {
	case s == "":
		return Errorf(CodeInvalid, "email: required")
	case len(s) > MaxEmailLen:
		return Errorf(CodeInvalid, "email: at most %d bytes, got %d", MaxEmailLen, len(s))
	case strings.Count(s, "@") != 1:
		return Errorf(CodeInvalid, "email: want exactly one @")
	case !utf8.ValidString(s):
		return Errorf(CodeInvalid, "email: not valid UTF-8")
	}
	local, domain, _ := strings.Cut(s, "@")
	if local == "" || domain == "" {
		return Errorf(CodeInvalid, "email: want name@domain")
	}
	if strings.HasPrefix(domain, ".") || strings.HasSuffix(domain, ".") || strings.Contains(domain, "..") {
		return Errorf(CodeInvalid, "email: malformed domain")
	}
	for _, r := range s {
		if unicode.IsSpace(r) || unicode.IsControl(r) || strings.ContainsRune(`<>()[]\,;:"`, r) {
			return Errorf(CodeInvalid, "email: contains a character not allowed in an address")
		}
	}
	return nil
}

// CheckPhone validates an optional phone number.
func CheckPhone(field, s string) error {
	if s == "" {
		return nil
	}
	if n := utf8.RuneCountInString(s); n > MaxPhoneLen {
		return Errorf(CodeInvalid, "%s: at most %d characters, got %d", field, MaxPhoneLen, n)
	}
	digits := 0
	for _, r := range s {
		switch {
		case '0' <= r && r <= '9':
			digits++
		case r == ' ' || r == '+' || r == '-' || r == '(' || r == ')':
		default:
			return Errorf(CodeInvalid, "%s: only digits, spaces and + - ( ) are allowed", field)
		}
	}
	if digits == 0 {
		return Errorf(CodeInvalid, "%s: needs at least one digit", field)
	}
	return nil
}

// checkText validates free text of at most max code points; required text must not be
// blank. Single-line text refuses control characters; multi-line text allows tab and newlines.
func checkText(field, s string, required bool, max int, multiline bool) error {
	if required && s == "" {
		return Errorf(CodeInvalid, "%s: required", field)
	}
	if !utf8.ValidString(s) {
		// Protobuf refuses such strings on the wire; the rule holds for any caller.
		return Errorf(CodeInvalid, "%s: not valid UTF-8", field)
	}
	if n := utf8.RuneCountInString(s); n > max {
		return Errorf(CodeInvalid, "%s: at most %d characters, got %d", field, max, n)
	}
	for _, r := range s {
		if unicode.IsControl(r) && !(multiline && (r == '\n' || r == '\r' || r == '\t')) {
			return Errorf(CodeInvalid, "%s: control characters are not allowed", field)
		}
	}
	return nil
}

// CheckName validates a first or last name (1–100 code points, already trimmed).
func CheckName(field, s string) error {
	return checkText(field, s, true, MaxNameLen, false)
}

// CheckURL validates an optional http(s) URL of at most 2048 bytes.
func CheckURL(field, s string) error {
	if s == "" {
		return nil
	}
	if len(s) > MaxURLLen {
		return Errorf(CodeInvalid, "%s: at most %d bytes, got %d", field, MaxURLLen, len(s))
	}
	for _, r := range s {
		if unicode.IsSpace(r) || unicode.IsControl(r) {
			return Errorf(CodeInvalid, "%s: a URL cannot contain white space", field)
		}
	}
	u, err := url.Parse(s)
	if err != nil || (!strings.EqualFold(u.Scheme, "http") && !strings.EqualFold(u.Scheme, "https")) || u.Host == "" {
		return Errorf(CodeInvalid, "%s: want an http or https URL", field)
	}
	return nil
}

// CheckDate validates an optional YYYY-MM-DD calendar date.
func CheckDate(field, s string) error {
	if s == "" {
		return nil
	}
	if len(s) != len(time.DateOnly) {
		return Errorf(CodeInvalid, "%s: want YYYY-MM-DD", field)
	}
	if _, err := time.Parse(time.DateOnly, s); err != nil {
		return Errorf(CodeInvalid, "%s: want a valid YYYY-MM-DD date", field)
	}
	return nil
}

// checkRange validates two optional dates and that the first is not after the second.
// YYYY-MM-DD strings compare like the dates they name.
func checkRange(prefix, startName, start, endName, end string) error {
	if err := CheckDate(prefix+startName, start); err != nil {
		return err
	}
	if err := CheckDate(prefix+endName, end); err != nil {
		return err
	}
	if start != "" && end != "" && start > end {
		return Errorf(CodeInvalid, "%s%s: %s is before %s %s", prefix, endName, end, startName, start)
	}
	return nil
}

// CheckCountryID validates the shape of a country id; whether it is known is the store's check.
func CheckCountryID(field string, id int32) error {
	if id < 0 || id > 999 {
		return Errorf(CodeInvalid, "%s: want an ISO 3166-1 numeric code, got %d", field, id)
	}
	return nil
}

// CheckID validates a required positive id.
func CheckID(field string, id int64) error {
	if id <= 0 {
		return Errorf(CodeInvalid, "%s: want a positive id, got %d", field, id)
	}
	return nil
}

// ValidateNewUser validates and normalizes a CreateUser request.
func ValidateNewUser(req *profilev1.CreateUserRequest) (NewUser, error) {
	u := NewUser{
		UserName:  FoldUserName(req.GetUserName()),
		FirstName: strings.TrimSpace(req.GetFirstName()),
		LastName:  strings.TrimSpace(req.GetLastName()),
		Email:     strings.TrimSpace(req.GetEmail()),
		Phone:     strings.TrimSpace(req.GetPhone()),
	}
	for _, err := range []error{
		CheckUserName(u.UserName),
		CheckName("firstName", u.FirstName),
		CheckName("lastName", u.LastName),
		CheckEmail(u.Email),
		CheckPhone("phone", u.Phone),
	} {
		if err != nil {
			return NewUser{}, err
		}
	}
	return u, nil
}

// SessionTTL validates ttlSeconds and returns the lifetime it means.
func SessionTTL(ttlSeconds int64) (time.Duration, error) {
	if ttlSeconds == 0 {
		return DefaultSessionTTL, nil
	}
	if ttlSeconds < 1 || ttlSeconds > int64(MaxSessionTTL/time.Second) {
		return 0, Errorf(CodeInvalid, "ttlSeconds: want 0 (30 days) or 1 to %d, got %d", int64(MaxSessionTTL/time.Second), ttlSeconds)
	}
	return time.Duration(ttlSeconds) * time.Second, nil
}

// trimmed returns a pointer to the trimmed value of an optional string.
func trimmed(p *string) *string {
	if p == nil {
		return nil
	}
	s := strings.TrimSpace(*p)
	return &s
}

// ValidateUpdate validates and normalizes an UpdateProfile request: every field and item,
// before anything is written. Whether countries exist and item ids are the user's is left
// to the store, which checks them inside the update's transaction.
func ValidateUpdate(req *profilev1.UpdateProfileRequest) (Update, error) {
	u := Update{
		UserID:    req.GetUserId(),
		FirstName: trimmed(req.FirstName),
		LastName:  trimmed(req.LastName),
		Phone:     trimmed(req.Phone),
		Picture:   trimmed(req.Picture),
		Summary:   trimmed(req.Summary),
		CountryID: req.CountryId,
	}
	if err := CheckID("userId", u.UserID); err != nil {
		return Update{}, err
	}
	if u.FirstName != nil {
		if err := CheckName("firstName", *u.FirstName); err != nil {
			return Update{}, err
		}
	}
	if u.LastName != nil {
		if err := CheckName("lastName", *u.LastName); err != nil {
			return Update{}, err
		}
	}
	if u.Phone != nil {
		if err := CheckPhone("phone", *u.Phone); err != nil {
			return Update{}, err
		}
	}
	if u.Picture != nil {
		if err := CheckURL("picture", *u.Picture); err != nil {
			return Update{}, err
		}
	}
	if u.Summary != nil {
		if err := checkText("summary", *u.Summary, false, MaxSummaryLen, true); err != nil {
			return Update{}, err
		}
	}
	if u.CountryID != nil {
		if err := CheckCountryID("countryId", *u.CountryID); err != nil {
			return Update{}, err
		}
	}
	var err error
	if s := req.GetEducation(); s != nil {
		u.Sections.Education = true
		if u.Education, err = validateSection("education", s.GetItems(), validateEducation); err != nil {
			return Update{}, err
		}
	}
	if s := req.GetExperience(); s != nil {
		u.Sections.Experience = true
		if u.Experience, err = validateSection("experience", s.GetItems(), validateExperience); err != nil {
			return Update{}, err
		}
	}
	if s := req.GetCertifications(); s != nil {
		u.Sections.Certifications = true
		if u.Certifications, err = validateSection("certifications", s.GetItems(), validateCertification); err != nil {
			return Update{}, err
		}
	}
	if s := req.GetSkills(); s != nil {
		u.Sections.Skills = true
		if u.Skills, err = validateSection("skills", s.GetItems(), validateSkill); err != nil {
			return Update{}, err
		}
	}
	if s := req.GetLanguages(); s != nil {
		u.Sections.Languages = true
		if u.Languages, err = validateSection("languages", s.GetItems(), validateLanguage); err != nil {
			return Update{}, err
		}
	}
	if s := req.GetProjects(); s != nil {
		u.Sections.Projects = true
		if u.Projects, err = validateSection("projects", s.GetItems(), validateProject); err != nil {
			return Update{}, err
		}
	}
	return u, nil
}

// item is what every curriculum item has: an id.
type item interface {
	GetId() int64
}

// validateSection checks the size of a section, that ids are positive and not repeated, and
// each item with check, which returns a normalized copy. prefix names the field, as in
// "curriculum.education[2].".
func validateSection[T item](section string, items []T, check func(prefix string, it T) (T, error)) ([]T, error) {
	if len(items) > MaxItems {
		return nil, Errorf(CodeInvalid, "curriculum.%s: at most %d items, got %d", section, MaxItems, len(items))
	}
	out := make([]T, 0, len(items))
	seen := make(map[int64]bool, len(items))
	for i, it := range items {
		prefix := fmt.Sprintf("curriculum.%s[%d].", section, i)
		if id := it.GetId(); id != 0 {
			if id < 0 {
				return nil, Errorf(CodeInvalid, "%sid: want a positive id, got %d", prefix, id)
			}
			if seen[id] {
				return nil, Errorf(CodeInvalid, "%sid: %d appears twice", prefix, id)
			}
			seen[id] = true
		}
		n, err := check(prefix, it)
		if err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	return out, nil
}

func title(prefix, name, s string, required bool) error {
	return checkText(prefix+name, s, required, MaxTitleLen, false)
}

func description(prefix, name, s string) error {
	return checkText(prefix+name, s, false, MaxDescriptionLen, true)
}

func firstErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

func validateEducation(p string, in *profilev1.EducationItem) (*profilev1.EducationItem, error) {
	it := &profilev1.EducationItem{
		Id:             in.GetId(),
		Institution:    strings.TrimSpace(in.GetInstitution()),
		Degree:         strings.TrimSpace(in.GetDegree()),
		FieldOfStudy:   strings.TrimSpace(in.GetFieldOfStudy()),
		Campus:         strings.TrimSpace(in.GetCampus()),
		StartDate:      in.GetStartDate(),
		GraduationDate: in.GetGraduationDate(),
		CountryId:      in.GetCountryId(),
	}
	return it, firstErr(
		title(p, "institution", it.Institution, true),
		title(p, "degree", it.Degree, false),
		title(p, "fieldOfStudy", it.FieldOfStudy, false),
		title(p, "campus", it.Campus, false),
		checkRange(p, "startDate", it.StartDate, "graduationDate", it.GraduationDate),
		CheckCountryID(p+"countryId", it.CountryId),
	)
}

func validateExperience(p string, in *profilev1.ExperienceItem) (*profilev1.ExperienceItem, error) {
	it := &profilev1.ExperienceItem{
		Id:          in.GetId(),
		Company:     strings.TrimSpace(in.GetCompany()),
		Position:    strings.TrimSpace(in.GetPosition()),
		Description: strings.TrimSpace(in.GetDescription()),
		StartDate:   in.GetStartDate(),
		EndDate:     in.GetEndDate(),
		CountryId:   in.GetCountryId(),
	}
	return it, firstErr(
		title(p, "company", it.Company, true),
		title(p, "position", it.Position, true),
		description(p, "description", it.Description),
		checkRange(p, "startDate", it.StartDate, "endDate", it.EndDate),
		CheckCountryID(p+"countryId", it.CountryId),
	)
}

func validateCertification(p string, in *profilev1.CertificationItem) (*profilev1.CertificationItem, error) {
	it := &profilev1.CertificationItem{
		Id:            in.GetId(),
		Name:          strings.TrimSpace(in.GetName()),
		Issuer:        strings.TrimSpace(in.GetIssuer()),
		IssueDate:     in.GetIssueDate(),
		CredentialUrl: strings.TrimSpace(in.GetCredentialUrl()),
	}
	return it, firstErr(
		title(p, "name", it.Name, true),
		title(p, "issuer", it.Issuer, false),
		CheckDate(p+"issueDate", it.IssueDate),
		CheckURL(p+"credentialUrl", it.CredentialUrl),
	)
}

func validateSkill(p string, in *profilev1.SkillItem) (*profilev1.SkillItem, error) {
	it := &profilev1.SkillItem{Id: in.GetId(), Name: strings.TrimSpace(in.GetName()), Level: in.Level}
	if err := title(p, "name", it.Name, true); err != nil {
		return nil, err
	}
	// A skill's level may be left out (docs/protocol.md §4.10); given, it is 1–5, so an
	// explicit 0 is refused like any other value out of range.
	if it.Level != nil && (*it.Level < MinSkillLevel || *it.Level > MaxSkillLevel) {
		return nil, Errorf(CodeInvalid, "%slevel: want %d to %d when given, got %d", p, MinSkillLevel, MaxSkillLevel, *it.Level)
	}
	return it, nil
}

func validateLanguage(p string, in *profilev1.LanguageItem) (*profilev1.LanguageItem, error) {
	it := &profilev1.LanguageItem{Id: in.GetId(), Name: strings.TrimSpace(in.GetName()), Proficiency: in.GetProficiency()}
	if err := title(p, "name", it.Name, true); err != nil {
		return nil, err
	}
	if it.Proficiency == "" {
		return nil, Errorf(CodeInvalid, "%sproficiency: required", p)
	}
	for _, ok := range Proficiencies {
		if it.Proficiency == ok {
			return it, nil
		}
	}
	return nil, Errorf(CodeInvalid, "%sproficiency: want one of %s", p, strings.Join(Proficiencies, ", "))
}

func validateProject(p string, in *profilev1.ProjectItem) (*profilev1.ProjectItem, error) {
	it := &profilev1.ProjectItem{
		Id:          in.GetId(),
		Name:        strings.TrimSpace(in.GetName()),
		Description: strings.TrimSpace(in.GetDescription()),
		Url:         strings.TrimSpace(in.GetUrl()),
		StartDate:   in.GetStartDate(),
		EndDate:     in.GetEndDate(),
	}
	return it, firstErr(
		title(p, "name", it.Name, true),
		description(p, "description", it.Description),
		CheckURL(p+"url", it.Url),
		checkRange(p, "startDate", it.StartDate, "endDate", it.EndDate),
	)
}
