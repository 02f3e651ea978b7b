package frames

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestParseInteger(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want int64
		ok   bool
	}{
		{"0", 0, true}, {"7", 7, true}, {"-3", -3, true},
		{"9223372036854775807", 9223372036854775807, true},
		{"-9223372036854775808", -9223372036854775808, true},
		{"9223372036854775808", 0, false}, {"1.0", 0, false}, {"1e2", 0, false}, {"1E2", 0, false},
		{"01", 0, false}, {"-", 0, false}, {`"1"`, 0, false}, {"true", 0, false}, {"", 0, false},
	}
	for _, tt := range tests {
		got, ok := parseInteger(json.RawMessage(tt.in))
		if got != tt.want || ok != tt.ok {
			t.Errorf("parseInteger(%s): got %d %v, want %d %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

func TestParseID(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]int64{"1": 1, "42": 42, "9223372036854775807": 9223372036854775807} {
		if got, ok := ParseID(in); !ok || got != want {
			t.Errorf("ParseID(%q): got %d %v, want %d", in, got, ok, want)
		}
	}
	for _, in := range []string{"", "0", "007", "abc", "-1", "+1", "1.5", " 1", "9223372036854775808", "１"} {
		if got, ok := ParseID(in); ok {
			t.Errorf("ParseID(%q): got %d, want rejected", in, got)
		}
	}
}

func TestEventFrame(t *testing.T) {
	t.Parallel()
	body, err := EncodePayload(PresenceEvent{UserID: 3, Event: EventUserOnline})
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(EventFrame("s1-a", TypePresenceEvent, body), &got); err != nil {
		t.Fatal(err)
	}
	if got["pid"] != "s1-a" || got["type"] != TypePresenceEvent || got["payload"].(map[string]any)["userId"] != float64(3) {
		t.Errorf("got %v", got)
	}
	if _, has := got["payload"].(map[string]any)["lastSeen"]; has {
		t.Error("user_online carries lastSeen")
	}
}

// TestParseUpdateProfileSkillLevel: a skill's level reaches the profile service as given, so
// that it can tell "not given" (absent or null) from an explicit 0, which it refuses.
func TestParseUpdateProfileSkillLevel(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		skill string
		want  *int32 // nil: not given
	}{
		{"absent", `{"name":"Go"}`, nil},
		{"null", `{"name":"Go","level":null}`, nil},
		{"zero", `{"name":"Go","level":0}`, ptr(int32(0))},
		{"three", `{"name":"Go","level":3}`, ptr(int32(3))},
		{"out of range is the service's to refuse", `{"name":"Go","level":9}`, ptr(int32(9))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			req, err := ParseUpdateProfile(json.RawMessage(`{"curriculum":{"skills":[`+tt.skill+`]}}`), 7)
			if err != nil {
				t.Fatalf("ParseUpdateProfile: %v", err)
			}
			items := req.GetSkills().GetItems()
			if len(items) != 1 {
				t.Fatalf("got %d skills, want 1", len(items))
			}
			got := items[0].Level
			switch {
			case tt.want == nil && got != nil:
				t.Errorf("level: got %d, want not given", *got)
			case tt.want != nil && (got == nil || *got != *tt.want):
				t.Errorf("level: got %v, want %d", got, *tt.want)
			}
		})
	}
	for _, bad := range []string{`"3"`, `3.5`, `true`, `4294967296`} {
		_, err := ParseUpdateProfile(json.RawMessage(`{"curriculum":{"skills":[{"name":"Go","level":`+bad+`}]}}`), 7)
		if err == nil || err.Code != 400 || !strings.Contains(err.Message, "curriculum.skills[0].level") {
			t.Errorf("level %s: got %v, want 400 naming curriculum.skills[0].level", bad, err)
		}
	}
}

func ptr[T any](v T) *T { return &v }
