package server_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"

	profilev1 "github.com/charla/charla/proto/gen/profile/v1"
)

// fullUpdate returns an update that sets every basic field and n items in every section.
func fullUpdate(userID int64, n int) *profilev1.UpdateProfileRequest {
	req := &profilev1.UpdateProfileRequest{
		UserId:    userID,
		FirstName: proto.String("Ana"), LastName: proto.String("Pérez"),
		Phone: proto.String("+34 600 111 222"), Picture: proto.String("https://example.com/a.png"),
		Summary: proto.String("Engineer.\nLikes Go."), CountryId: proto.Int32(724),
		Education: &profilev1.EducationSection{}, Experience: &profilev1.ExperienceSection{},
		Certifications: &profilev1.CertificationSection{}, Skills: &profilev1.SkillSection{},
		Languages: &profilev1.LanguageSection{}, Projects: &profilev1.ProjectSection{},
	}
	for i := range n {
		country := []int32{724, 484, 0}[i%3]
		req.Education.Items = append(req.Education.Items, &profilev1.EducationItem{
			Institution: fmt.Sprintf("School %d", i), Degree: "BSc", FieldOfStudy: "CS", Campus: "Main",
			StartDate: "2010-09-01", GraduationDate: "2014-06-30", CountryId: country,
		})
		req.Experience.Items = append(req.Experience.Items, &profilev1.ExperienceItem{
			Company: fmt.Sprintf("Company %d", i), Position: "Engineer", Description: "Did things.",
			StartDate: "2015-01-01", CountryId: country,
		})
		req.Certifications.Items = append(req.Certifications.Items, &profilev1.CertificationItem{
			Name: fmt.Sprintf("Cert %d", i), Issuer: "CNCF", IssueDate: "2020-02-29", CredentialUrl: "https://example.com/c",
		})
		req.Skills.Items = append(req.Skills.Items, &profilev1.SkillItem{Name: fmt.Sprintf("Skill %d", i), Level: proto.Int32(int32(i%5 + 1))})
		req.Languages.Items = append(req.Languages.Items, &profilev1.LanguageItem{Name: fmt.Sprintf("Lang %d", i), Proficiency: "advanced"})
		req.Projects.Items = append(req.Projects.Items, &profilev1.ProjectItem{
			Name: fmt.Sprintf("Project %d", i), Description: "A project.", Url: "http://example.com/p", StartDate: "2021-01-01", EndDate: "2021-12-31",
		})
	}
	return req
}

func TestGetProfileVisibility(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, e *env) {
		owner, friend, stranger := e.createUser(t), e.createUser(t), e.createUser(t)
		e.update(t, fullUpdate(owner.GetId(), 2))
		e.contacts.set(friend.GetId(), owner.GetId())
		e.contacts.set(stranger.GetId(), friend.GetId())
		e.presence.set(owner.GetId(), true, 1700000000123)

		tests := []struct {
			name          string
			viewer        int64
			visible       bool
			contactCalls  int
			presenceCalls int
		}{
			{"self", owner.GetId(), true, 0, 1},
			{"contact", friend.GetId(), true, 1, 1},
			{"stranger", stranger.GetId(), false, 1, 0},
		}
		for _, tc := range tests {
			c0, p0 := e.contacts.count(), e.presence.count()
			p := e.profile(t, tc.viewer, owner.GetId())
			if gotC, gotP := e.contacts.count()-c0, e.presence.count()-p0; gotC != tc.contactCalls || gotP != tc.presenceCalls {
				t.Errorf("%s: got %d contact and %d presence calls, want %d and %d", tc.name, gotC, gotP, tc.contactCalls, tc.presenceCalls)
			}
			if p.GetUserName() != owner.GetUserName() || p.GetFirstName() != "Ana" || p.GetSummary() == "" || p.GetCountryName() != "Spain" || len(p.GetCurriculum().GetSkills()) != 2 {
				t.Errorf("%s: public fields missing: %v", tc.name, p)
			}
			if tc.visible {
				if p.GetEmail() != owner.GetEmail() || p.GetPhone() != "+34 600 111 222" || !p.GetIsOnline() || p.GetLastSeen() != 1700000000123 {
					t.Errorf("%s: got email %q phone %q online %v lastSeen %d, want all visible", tc.name, p.GetEmail(), p.GetPhone(), p.GetIsOnline(), p.GetLastSeen())
				}
			} else if p.GetEmail() != "" || p.GetPhone() != "" || p.GetIsOnline() || p.GetLastSeen() != 0 {
				t.Errorf("%s: got email %q phone %q online %v lastSeen %d, want all hidden", tc.name, p.GetEmail(), p.GetPhone(), p.GetIsOnline(), p.GetLastSeen())
			}
		}

		_, err := e.client.GetProfile(context.Background(), connect.NewRequest(&profilev1.GetProfileRequest{ViewerId: owner.GetId(), UserId: 999999}))
		wantCode(t, err, connect.CodeNotFound, "userId:")
		_, err = e.client.GetProfile(context.Background(), connect.NewRequest(&profilev1.GetProfileRequest{ViewerId: 0, UserId: owner.GetId()}))
		wantCode(t, err, connect.CodeInvalidArgument, "viewerId:")
		_, err = e.client.GetProfile(context.Background(), connect.NewRequest(&profilev1.GetProfileRequest{ViewerId: owner.GetId(), UserId: -1}))
		wantCode(t, err, connect.CodeInvalidArgument, "userId:")

		// Presence failing: the profile is still served, as offline.
		e.presence.fail(connect.NewError(connect.CodeUnimplemented, errors.New("stub")))
		if p := e.profile(t, owner.GetId(), owner.GetId()); p.GetIsOnline() || p.GetLastSeen() != 0 || p.GetEmail() == "" {
			t.Errorf("presence down: got online %v lastSeen %d email %q, want offline, 0, visible email", p.GetIsOnline(), p.GetLastSeen(), p.GetEmail())
		}
		// Contacts failing: another user's profile cannot be decided.
		e.contacts.fail(connect.NewError(connect.CodeUnimplemented, errors.New("stub")))
		_, err = e.client.GetProfile(context.Background(), connect.NewRequest(&profilev1.GetProfileRequest{ViewerId: friend.GetId(), UserId: owner.GetId()}))
		wantCode(t, err, connect.CodeUnavailable, "contacts:")
		if p := e.profile(t, owner.GetId(), owner.GetId()); p.GetEmail() == "" {
			t.Error("own profile with contacts down: email hidden, want visible")
		}
	})
}

func TestGetProfileEmpty(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, e *env) {
		u := e.createUser(t)
		p := e.profile(t, u.GetId(), u.GetId())
		cv := p.GetCurriculum()
		// Empty repeated fields do not survive the wire as non-nil; the edge renders them as [].
		if cv == nil || len(cv.Education)+len(cv.Experience)+len(cv.Certifications)+len(cv.Skills)+len(cv.Languages)+len(cv.Projects) != 0 {
			t.Fatalf("got curriculum %v, want it present with six empty sections", cv)
		}
		if p.GetCountryId() != 0 || p.GetCountryName() != "" || p.GetPicture() != "" || p.GetSummary() != "" {
			t.Fatalf("got %v, want no country, picture or summary", p)
		}
	})
}

// TestGetProfileQueryCount asserts that a profile costs the same number of queries with 1
// and with 50 items per section: one per section (with the Country JOIN), never one per item.
func TestGetProfileQueryCount(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, e *env) {
		counts := map[int]int64{}
		for _, n := range []int{1, 50} {
			u := e.createUser(t)
			e.update(t, fullUpdate(u.GetId(), n))
			e.queries.Reset()
			p := e.profile(t, u.GetId(), u.GetId())
			counts[n] = e.queries.Load()
			cv := p.GetCurriculum()
			for name, got := range map[string]int{
				"education": len(cv.GetEducation()), "experience": len(cv.GetExperience()), "certifications": len(cv.GetCertifications()),
				"skills": len(cv.GetSkills()), "languages": len(cv.GetLanguages()), "projects": len(cv.GetProjects()),
			} {
				if got != n {
					t.Fatalf("%s: got %d items, want %d", name, got, n)
				}
			}
			if got, want := cv.GetExperience()[0].GetCountryName(), "Spain"; got != want {
				t.Fatalf("experience countryName: got %q, want %q", got, want)
			}
		}
		if counts[1] != counts[50] {
			t.Fatalf("GetProfile queries: %d with 1 item per section, %d with 50; want equal", counts[1], counts[50])
		}
		if counts[1] > 8 {
			t.Fatalf("GetProfile queries: got %d, want at most 8", counts[1])
		}
		t.Logf("GetProfile: %d queries with 1 and with 50 items per section", counts[1])
	})
}

func TestUpdateProfile(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, e *env) {
		u := e.createUser(t)
		p := e.update(t, fullUpdate(u.GetId(), 3))
		if p.GetEmail() != u.GetEmail() || p.GetPhone() != "+34 600 111 222" || p.GetCountryName() != "Spain" || p.GetSummary() != "Engineer.\nLikes Go." {
			t.Fatalf("got %v, want the owner's view with the new fields", p)
		}
		cv := p.GetCurriculum()
		edu := cv.GetEducation()
		if len(edu) != 3 || edu[0].GetCountryName() != "Spain" || edu[1].GetCountryName() != "Mexico" || edu[2].GetCountryName() != "" || edu[2].GetCountryId() != 0 {
			t.Fatalf("education %v: want 3 items with Spain, Mexico and no country", edu)
		}
		for i := 1; i < len(edu); i++ {
			if edu[i-1].GetId() >= edu[i].GetId() {
				t.Fatalf("education not in id order: %v", edu)
			}
		}

		// Partial update: only the given basic field changes; sections not given stay.
		p2 := e.update(t, &profilev1.UpdateProfileRequest{UserId: u.GetId(), FirstName: proto.String("  Eva ")})
		if p2.GetFirstName() != "Eva" || p2.GetLastName() != "Pérez" || p2.GetPhone() != p.GetPhone() || !proto.Equal(p2.GetCurriculum(), cv) {
			t.Fatalf("partial update changed more than firstName: %v", p2)
		}

		// Clearing: "" for phone, picture, summary; 0 for the country; [] empties a section.
		p3 := e.update(t, &profilev1.UpdateProfileRequest{
			UserId: u.GetId(), Phone: proto.String(""), Picture: proto.String(""), Summary: proto.String(""), CountryId: proto.Int32(0),
			Skills: &profilev1.SkillSection{},
		})
		if p3.GetPhone() != "" || p3.GetPicture() != "" || p3.GetSummary() != "" || p3.GetCountryId() != 0 || p3.GetCountryName() != "" {
			t.Fatalf("got %v, want phone, picture, summary and country cleared", p3)
		}
		if len(p3.GetCurriculum().GetSkills()) != 0 || len(p3.GetCurriculum().GetLanguages()) != 3 {
			t.Fatalf("got %d skills and %d languages, want 0 and 3", len(p3.GetCurriculum().GetSkills()), len(p3.GetCurriculum().GetLanguages()))
		}

		// Replacing a section: items with an id keep it (and take the new values), items
		// without get new, higher ids, omitted items go; countryName may be echoed back.
		kept := proto.Clone(edu[2]).(*profilev1.EducationItem)
		kept.Degree, kept.CountryName = "PhD", "ignored"
		p4 := e.update(t, &profilev1.UpdateProfileRequest{UserId: u.GetId(), Education: &profilev1.EducationSection{Items: []*profilev1.EducationItem{
			{Institution: "New school", CountryId: 840}, kept, edu[0],
		}}})
		got := p4.GetCurriculum().GetEducation()
		if len(got) != 3 || got[0].GetId() != edu[0].GetId() || got[1].GetId() != kept.GetId() || got[1].GetDegree() != "PhD" || got[1].GetCountryName() != "" ||
			got[2].GetId() <= edu[2].GetId() || got[2].GetInstitution() != "New school" || got[2].GetCountryName() != "United States" {
			t.Fatalf("education after replace: %v; want ids %d, %d, then a new one with United States", got, edu[0].GetId(), kept.GetId())
		}
		if len(p4.GetCurriculum().GetExperience()) != 3 {
			t.Fatalf("experience changed by an education update")
		}

		_, err := e.client.UpdateProfile(context.Background(), connect.NewRequest(&profilev1.UpdateProfileRequest{UserId: 999999, FirstName: proto.String("X")}))
		wantCode(t, err, connect.CodeNotFound, "userId:")
	})
}

// TestSkillLevelOptional: a skill's level may be left out, and then comes back absent (read
// as 0); given, it is kept. An explicit 0 is refused (TestUpdateProfileValidation).
func TestSkillLevelOptional(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, e *env) {
		u := e.createUser(t)
		p := e.update(t, &profilev1.UpdateProfileRequest{UserId: u.GetId(), Skills: &profilev1.SkillSection{Items: []*profilev1.SkillItem{
			{Name: "Go"}, {Name: "SQL", Level: proto.Int32(3)},
		}}})
		skills := p.GetCurriculum().GetSkills()
		if len(skills) != 2 {
			t.Fatalf("got %d skills, want 2", len(skills))
		}
		if skills[0].Level != nil {
			t.Errorf("skill without a level: got level %d, want none", skills[0].GetLevel())
		}
		if skills[1].Level == nil || skills[1].GetLevel() != 3 {
			t.Errorf("skill with level 3: got %v, want 3", skills[1].Level)
		}
	})
}

func TestUpdateProfileForeignItemIsAllOrNothing(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, e *env) {
		a, b := e.createUser(t), e.createUser(t)
		e.update(t, fullUpdate(a.GetId(), 2))
		pb := e.update(t, fullUpdate(b.GetId(), 2))
		before := e.profile(t, a.GetId(), a.GetId())
		foreign := pb.GetCurriculum().GetProjects()[1]
		req := &profilev1.UpdateProfileRequest{
			UserId:    a.GetId(),
			FirstName: proto.String("Changed"),
			Skills:    &profilev1.SkillSection{},
			Projects:  &profilev1.ProjectSection{Items: []*profilev1.ProjectItem{before.GetCurriculum().GetProjects()[0], foreign}},
		}
		_, err := e.client.UpdateProfile(context.Background(), connect.NewRequest(req))
		wantCode(t, err, connect.CodeInvalidArgument, "curriculum.projects[1].id:")
		// An id of another section of one's own is not accepted either.
		req.Projects.Items = []*profilev1.ProjectItem{{Id: before.GetCurriculum().GetSkills()[0].GetId() + 1000, Name: "x"}}
		_, err = e.client.UpdateProfile(context.Background(), connect.NewRequest(req))
		wantCode(t, err, connect.CodeInvalidArgument, "curriculum.projects[0].id:")
		if after := e.profile(t, a.GetId(), a.GetId()); !proto.Equal(after, before) {
			t.Fatalf("a failed update changed the profile:\n got %v\nwant %v", after, before)
		}
		if after := e.profile(t, b.GetId(), b.GetId()); !proto.Equal(after.GetCurriculum(), pb.GetCurriculum()) {
			t.Fatal("a failed update changed another user's profile")
		}
	})
}

func TestUpdateProfileValidation(t *testing.T) {
	t.Parallel()
	long := func(n int) string { return strings.Repeat("ü", n) }
	type mut = func(r *profilev1.UpdateProfileRequest)
	tests := []struct {
		name   string
		mutate mut
		field  string
	}{
		{"userId", func(r *profilev1.UpdateProfileRequest) { r.UserId = 0 }, "userId:"},
		{"firstName empty", func(r *profilev1.UpdateProfileRequest) { r.FirstName = proto.String(" ") }, "firstName:"},
		{"lastName 101", func(r *profilev1.UpdateProfileRequest) { r.LastName = proto.String(long(101)) }, "lastName:"},
		{"phone letters", func(r *profilev1.UpdateProfileRequest) { r.Phone = proto.String("12a") }, "phone:"},
		{"phone 33", func(r *profilev1.UpdateProfileRequest) { r.Phone = proto.String(strings.Repeat("9", 33)) }, "phone:"},
		{"picture scheme", func(r *profilev1.UpdateProfileRequest) { r.Picture = proto.String("ftp://example.com/a.png") }, "picture:"},
		{"picture javascript", func(r *profilev1.UpdateProfileRequest) { r.Picture = proto.String("javascript:alert(1)") }, "picture:"},
		{"picture not a URL", func(r *profilev1.UpdateProfileRequest) { r.Picture = proto.String("a picture") }, "picture:"},
		{"picture 2049 bytes", func(r *profilev1.UpdateProfileRequest) {
			r.Picture = proto.String("https://example.com/" + strings.Repeat("a", 2049-20))
		}, "picture:"},
		{"summary 2001", func(r *profilev1.UpdateProfileRequest) { r.Summary = proto.String(long(2001)) }, "summary:"},
		{"countryId unknown", func(r *profilev1.UpdateProfileRequest) { r.CountryId = proto.Int32(999) }, "countryId:"},
		{"countryId negative", func(r *profilev1.UpdateProfileRequest) { r.CountryId = proto.Int32(-4) }, "countryId:"},
		{"51 skills", func(r *profilev1.UpdateProfileRequest) {
			for range 51 - len(r.Skills.Items) {
				r.Skills.Items = append(r.Skills.Items, &profilev1.SkillItem{Name: "s", Level: proto.Int32(1)})
			}
		}, "curriculum.skills:"},
		{"institution missing", func(r *profilev1.UpdateProfileRequest) { r.Education.Items[1].Institution = "" }, "curriculum.education[1].institution:"},
		{"degree 201", func(r *profilev1.UpdateProfileRequest) { r.Education.Items[0].Degree = long(201) }, "curriculum.education[0].degree:"},
		{"education country unknown", func(r *profilev1.UpdateProfileRequest) { r.Education.Items[1].CountryId = 1 }, "curriculum.education[1].countryId:"},
		{"graduation before start", func(r *profilev1.UpdateProfileRequest) { r.Education.Items[0].GraduationDate = "2010-08-31" }, "curriculum.education[0].graduationDate:"},
		{"company missing", func(r *profilev1.UpdateProfileRequest) { r.Experience.Items[0].Company = "" }, "curriculum.experience[0].company:"},
		{"position missing", func(r *profilev1.UpdateProfileRequest) { r.Experience.Items[0].Position = " " }, "curriculum.experience[0].position:"},
		{"description 2001", func(r *profilev1.UpdateProfileRequest) { r.Experience.Items[1].Description = long(2001) }, "curriculum.experience[1].description:"},
		{"experience country unknown", func(r *profilev1.UpdateProfileRequest) { r.Experience.Items[0].CountryId = 555 }, "curriculum.experience[0].countryId:"},
		{"month 13", func(r *profilev1.UpdateProfileRequest) { r.Experience.Items[0].StartDate = "2020-13-01" }, "curriculum.experience[0].startDate:"},
		{"february 30", func(r *profilev1.UpdateProfileRequest) { r.Experience.Items[0].EndDate = "2021-02-30" }, "curriculum.experience[0].endDate:"},
		{"short year", func(r *profilev1.UpdateProfileRequest) { r.Projects.Items[0].StartDate = "21-01-01" }, "curriculum.projects[0].startDate:"},
		{"date with time", func(r *profilev1.UpdateProfileRequest) { r.Certifications.Items[0].IssueDate = "2020-01-01T00:00:00Z" }, "curriculum.certifications[0].issueDate:"},
		{"project end before start", func(r *profilev1.UpdateProfileRequest) { r.Projects.Items[1].EndDate = "2020-12-31" }, "curriculum.projects[1].endDate:"},
		{"certification name missing", func(r *profilev1.UpdateProfileRequest) { r.Certifications.Items[0].Name = "" }, "curriculum.certifications[0].name:"},
		{"credentialUrl", func(r *profilev1.UpdateProfileRequest) { r.Certifications.Items[1].CredentialUrl = "example.com/c" }, "curriculum.certifications[1].credentialUrl:"},
		{"skill level -1", func(r *profilev1.UpdateProfileRequest) { r.Skills.Items[0].Level = proto.Int32(-1) }, "curriculum.skills[0].level:"},
		{"skill level 6", func(r *profilev1.UpdateProfileRequest) { r.Skills.Items[1].Level = proto.Int32(6) }, "curriculum.skills[1].level:"},
		// Given, a level is 1–5: an explicit 0 is not "no level" (docs/protocol.md §4.10).
		{"skill level 0 given", func(r *profilev1.UpdateProfileRequest) { r.Skills.Items[1].Level = proto.Int32(0) }, "curriculum.skills[1].level:"},
		{"language proficiency", func(r *profilev1.UpdateProfileRequest) { r.Languages.Items[0].Proficiency = "expert" }, "curriculum.languages[0].proficiency:"},
		{"language proficiency missing", func(r *profilev1.UpdateProfileRequest) { r.Languages.Items[0].Proficiency = "" }, "curriculum.languages[0].proficiency:"},
		{"language name missing", func(r *profilev1.UpdateProfileRequest) { r.Languages.Items[1].Name = "" }, "curriculum.languages[1].name:"},
		{"project url", func(r *profilev1.UpdateProfileRequest) { r.Projects.Items[0].Url = "mailto:a@example.com" }, "curriculum.projects[0].url:"},
		{"project name missing", func(r *profilev1.UpdateProfileRequest) { r.Projects.Items[0].Name = "" }, "curriculum.projects[0].name:"},
		{"repeated id", func(r *profilev1.UpdateProfileRequest) {
			r.Skills.Items[0].Id, r.Skills.Items[1].Id = 7, 7
		}, "curriculum.skills[1].id:"},
		{"negative id", func(r *profilev1.UpdateProfileRequest) { r.Languages.Items[0].Id = -3 }, "curriculum.languages[0].id:"},
	}
	forEachBackend(t, func(t *testing.T, e *env) {
		u := e.createUser(t)
		before := e.update(t, fullUpdate(u.GetId(), 1))
		for _, tc := range tests {
			req := fullUpdate(u.GetId(), 2)
			req.FirstName = proto.String("Changed")
			tc.mutate(req)
			_, err := e.client.UpdateProfile(context.Background(), connect.NewRequest(req))
			t.Run(tc.name, func(t *testing.T) { wantCode(t, err, connect.CodeInvalidArgument, tc.field) })
		}
		// Nothing of the failed updates was applied.
		if after := e.profile(t, u.GetId(), u.GetId()); !proto.Equal(after, before) {
			t.Fatalf("failed updates changed the profile:\n got %v\nwant %v", after, before)
		}
		// The limits themselves are accepted.
		req := fullUpdate(u.GetId(), 50)
		req.Summary = proto.String(long(2000))
		req.Picture = proto.String("HTTPS://example.com/" + strings.Repeat("a", 2048-20))
		req.Education.Items[0].Institution = long(200)
		req.Experience.Items[0].Description = long(2000)
		req.Experience.Items[1].StartDate, req.Experience.Items[1].EndDate = "2020-02-29", "2020-02-29"
		req.Skills.Items[0].Level = nil // a skill's level may be left out
		if _, err := e.client.UpdateProfile(context.Background(), connect.NewRequest(req)); err != nil {
			t.Fatalf("update at the limits: %v", err)
		}
	})
}

// TestDemoSeeding replays what cmd/charla's demo seeding does: CreateUser (already_exists
// on a second run), GetUsers by userName, UpdateProfile, CreateSession.
func TestDemoSeeding(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		create := &profilev1.CreateUserRequest{UserName: "alice", FirstName: "Alice", LastName: "García", Email: "alice@example.com", Phone: "+34 600 000 001"}
		res, err := e.client.CreateUser(ctx, connect.NewRequest(create))
		if err != nil {
			t.Fatalf("CreateUser: %v", err)
		}
		id := res.Msg.GetUser().GetId()
		p := e.update(t, &profilev1.UpdateProfileRequest{
			UserId:    id,
			Summary:   proto.String("Backend engineer who likes real-time systems."),
			CountryId: proto.Int32(724),
			Picture:   proto.String("https://example.com/avatars/alice.png"),
			Education: &profilev1.EducationSection{Items: []*profilev1.EducationItem{
				{Institution: "Universidad Politécnica de Madrid", Degree: "MSc", FieldOfStudy: "Computer Science", Campus: "Montegancedo", StartDate: "2012-09-01", GraduationDate: "2014-06-30", CountryId: 724},
			}},
			Experience: &profilev1.ExperienceSection{Items: []*profilev1.ExperienceItem{
				{Company: "Charla", Position: "Founding engineer", Description: "Chat backend in Go.", StartDate: "2024-01-15", CountryId: 724},
				{Company: "Telefónica", Position: "Software engineer", StartDate: "2014-09-01", EndDate: "2023-12-31", CountryId: 724},
			}},
			Languages: &profilev1.LanguageSection{Items: []*profilev1.LanguageItem{{Name: "Spanish", Proficiency: "native"}}},
		})
		if p.GetCurriculum().GetEducation()[0].GetCountryName() != "Spain" || len(p.GetCurriculum().GetExperience()) != 2 {
			t.Fatalf("demo profile: %v", p)
		}
		_, err = e.client.CreateUser(ctx, connect.NewRequest(create))
		wantCode(t, err, connect.CodeAlreadyExists, "userName:")
		found, err := e.client.GetUsers(ctx, connect.NewRequest(&profilev1.GetUsersRequest{UserNames: []string{"alice"}}))
		if err != nil || len(found.Msg.GetUsers()) != 1 || found.Msg.GetUsers()[0].GetId() != id {
			t.Fatalf("GetUsers(alice): got %v, %v; want user %d", found, err, id)
		}
		if s := e.session(t, id, 0); s.GetToken() == "" {
			t.Fatal("no token")
		}
	})
}
