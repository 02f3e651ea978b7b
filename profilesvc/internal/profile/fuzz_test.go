package profile_test

import (
	"strings"
	"testing"
	"unicode/utf8"

	"google.golang.org/protobuf/proto"

	"github.com/charla/charla/profilesvc/internal/profile"
	profilev1 "github.com/charla/charla/proto/gen/profile/v1"
)

// The fuzz targets of the profile validator. Their seed corpus is in testdata/fuzz; `make
// fuzz` runs each for FUZZTIME.

// FuzzValidateNewUser: a CreateUser request is either refused as invalid_argument naming
// a field, or normalized into values within PROTOCOL.md §7's limits that validate again
// unchanged.
func FuzzValidateNewUser(f *testing.F) {
	f.Add("Alice", "Alice", "Liddell", "alice@example.com", "+34 600")
	f.Add("al", "A", "B", "a@b.c", "")
	f.Add("bob_1.x-Y", " Bob ", "\tB\n", "BOB@Example.COM", "(600) 11-22")
	f.Add("\u212aate", "Ä", "ö", "a@@b", "12ab")
	f.Add("eve", strings.Repeat("ñ", 101), "x", "e@x", "1")
	f.Fuzz(func(t *testing.T, userName, first, last, email, phone string) {
		req := &profilev1.CreateUserRequest{UserName: userName, FirstName: first, LastName: last, Email: email, Phone: phone}
		u, err := profile.ValidateNewUser(req)
		if err != nil {
			if profile.CodeOf(err) != profile.CodeInvalid || !strings.Contains(err.Error(), ":") {
				t.Fatalf("ValidateNewUser(%v): %v, want an invalid error naming the field", req, err)
			}
			return
		}
		if n := len(u.UserName); n < profile.MinUserNameLen || n > profile.MaxUserNameLen || u.UserName != strings.ToLower(u.UserName) {
			t.Fatalf("ValidateNewUser(%v) userName %q", req, u.UserName)
		}
		for _, s := range []string{u.FirstName, u.LastName} {
			if n := utf8.RuneCountInString(s); n < 1 || n > profile.MaxNameLen || !utf8.ValidString(s) || s != strings.TrimSpace(s) {
				t.Fatalf("ValidateNewUser(%v) name %q outside 1-%d trimmed code points", req, s, profile.MaxNameLen)
			}
		}
		if len(u.Email) > profile.MaxEmailLen || strings.Count(u.Email, "@") != 1 {
			t.Fatalf("ValidateNewUser(%v) email %q", req, u.Email)
		}
		again, err := profile.ValidateNewUser(&profilev1.CreateUserRequest{UserName: u.UserName, FirstName: u.FirstName, LastName: u.LastName, Email: u.Email, Phone: u.Phone})
		if err != nil || again != u {
			t.Fatalf("normalized %+v does not validate to itself: %+v, %v", u, again, err)
		}
	})
}

// FuzzValidateUpdate: any UpdateProfile request (as protobuf bytes) is either refused as
// invalid_argument, or accepted with every given field and item within its limits.
func FuzzValidateUpdate(f *testing.F) {
	s := func(v string) *string { return &v }
	c := func(v int32) *int32 { return &v }
	for _, req := range []*profilev1.UpdateProfileRequest{
		{UserId: 1, FirstName: s("Ana"), CountryId: c(724)},
		{UserId: 1, Phone: s(""), Picture: s("https://x.example/a.png"), Summary: s("hola\nmundo")},
		{UserId: 0, FirstName: s("x")},
		{UserId: 1, Skills: &profilev1.SkillSection{Items: []*profilev1.SkillItem{{Name: "Go", Level: proto.Int32(5)}, {Id: 3, Name: "SQL"}}}},
		{UserId: 1, Languages: &profilev1.LanguageSection{Items: []*profilev1.LanguageItem{{Name: "es", Proficiency: "native"}}}},
		{UserId: 1, Experience: &profilev1.ExperienceSection{Items: []*profilev1.ExperienceItem{{Company: "A", Position: "B", StartDate: "2020-02-30"}}}},
		{UserId: 1, Education: &profilev1.EducationSection{Items: []*profilev1.EducationItem{{Institution: "U", StartDate: "2020-01-01", GraduationDate: "2019-01-01"}}}},
		{UserId: 1, Picture: s("javascript:alert(1)"), CountryId: c(-1)},
	} {
		b, err := proto.Marshal(req)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		req := new(profilev1.UpdateProfileRequest)
		if proto.Unmarshal(data, req) != nil {
			return
		}
		u, err := profile.ValidateUpdate(req)
		if err != nil {
			if profile.CodeOf(err) != profile.CodeInvalid {
				t.Fatalf("ValidateUpdate(%v): %v, want invalid", req, err)
			}
			return
		}
		if u.UserID <= 0 {
			t.Fatalf("ValidateUpdate(%v) accepted user %d", req, u.UserID)
		}
		for _, p := range []*string{u.FirstName, u.LastName} {
			if p != nil && (utf8.RuneCountInString(*p) < 1 || utf8.RuneCountInString(*p) > profile.MaxNameLen) {
				t.Fatalf("ValidateUpdate(%v) accepted name %q", req, *p)
			}
		}
		// URL schemes are case-insensitive (RFC 3986 §3.1): "HTTPS://" is an https URL.
		if pic := strings.ToLower(derefOr(u.Picture)); pic != "" && !strings.HasPrefix(pic, "http://") && !strings.HasPrefix(pic, "https://") {
			t.Fatalf("ValidateUpdate(%v) accepted picture %q", req, *u.Picture)
		}
		if u.Summary != nil && utf8.RuneCountInString(*u.Summary) > profile.MaxSummaryLen {
			t.Fatalf("ValidateUpdate(%v) accepted a summary of %d code points", req, utf8.RuneCountInString(*u.Summary))
		}
		for _, n := range []int{len(u.Education), len(u.Experience), len(u.Certifications), len(u.Skills), len(u.Languages), len(u.Projects)} {
			if n > profile.MaxItems {
				t.Fatalf("ValidateUpdate(%v) accepted a section of %d items", req, n)
			}
		}
		for _, sk := range u.Skills {
			if sk.GetLevel() < 0 || sk.GetLevel() > 5 || sk.GetName() == "" {
				t.Fatalf("ValidateUpdate(%v) accepted skill %v", req, sk)
			}
		}
	})
}

// derefOr returns *p, or "" for nil.
func derefOr(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}
