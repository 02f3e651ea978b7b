package profile_test

import (
	"strings"
	"testing"
	"time"

	"github.com/charla/charla/profilesvc/internal/profile"
)

func TestFoldUserName(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{"Alice": "alice", "BOB_1.x-Y": "bob_1.x-y", "\u212aate": "\u212aate", "ÄB": "Äb"} {
		if got := profile.FoldUserName(in); got != want {
			t.Errorf("FoldUserName(%q): got %q, want %q", in, got, want)
		}
	}
}

func TestChecks(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		err  error
		ok   bool
	}{
		{"email plain", profile.CheckEmail("a@example.com"), true},
		{"email unicode", profile.CheckEmail("josé@correo.es"), true},
		{"email trailing dot", profile.CheckEmail("a@example.com."), false},
		{"email double dot", profile.CheckEmail("a@example..com"), false},
		{"email angle", profile.CheckEmail("<a@example.com>"), false},
		{"url http", profile.CheckURL("u", "http://example.com"), true},
		{"url https upper", profile.CheckURL("u", "HTTPS://example.com/x?y=1"), true},
		{"url no host", profile.CheckURL("u", "https:///x"), false},
		{"url relative", profile.CheckURL("u", "/x.png"), false},
		{"url space", profile.CheckURL("u", "https://example.com/a b"), false},
		{"url empty", profile.CheckURL("u", ""), true},
		{"date", profile.CheckDate("d", "2024-02-29"), true},
		{"date not leap", profile.CheckDate("d", "2023-02-29"), false},
		{"date one digit", profile.CheckDate("d", "2023-2-09"), false},
		{"date slash", profile.CheckDate("d", "2023/02/09"), false},
		{"phone", profile.CheckPhone("p", "+1 (555) 010-9999"), true},
		{"phone no digit", profile.CheckPhone("p", "+()-"), false},
		{"userName", profile.CheckUserName("a.b_c-9"), true},
		{"userName upper", profile.CheckUserName("Abc"), false},
	}
	for _, tc := range tests {
		if got := tc.err == nil; got != tc.ok {
			t.Errorf("%s: got err %v, want ok %v", tc.name, tc.err, tc.ok)
		}
		if tc.err != nil && profile.CodeOf(tc.err) != profile.CodeInvalid {
			t.Errorf("%s: got code %v, want Invalid", tc.name, profile.CodeOf(tc.err))
		}
	}
}

func TestSessionTTL(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   int64
		want time.Duration
		ok   bool
	}{
		{0, 30 * 24 * time.Hour, true},
		{1, time.Second, true},
		{365 * 24 * 3600, 365 * 24 * time.Hour, true},
		{365*24*3600 + 1, 0, false},
		{-1, 0, false},
	}
	for _, tc := range tests {
		got, err := profile.SessionTTL(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("SessionTTL(%d): got %v, %v; want %v, ok %v", tc.in, got, err, tc.want, tc.ok)
		}
		if err != nil && !strings.HasPrefix(err.Error(), "ttlSeconds:") {
			t.Errorf("SessionTTL(%d): error %q does not name ttlSeconds", tc.in, err)
		}
	}
}

// TestInvalidUTF8Refused is the regression test of a fuzz find (FuzzValidateNewUser):
// a name or email that is not valid UTF-8 was accepted.
func TestInvalidUTF8Refused(t *testing.T) {
	t.Parallel()
	if err := profile.CheckName("firstName", "\x80"); err == nil || !strings.Contains(err.Error(), "firstName") {
		t.Errorf("CheckName(\\x80) = %v, want an error naming firstName", err)
	}
	if err := profile.CheckEmail("a\xff@b.c"); err == nil {
		t.Error("CheckEmail(a\\xff@b.c) = nil, want an error")
	}
}
