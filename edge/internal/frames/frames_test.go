package frames

import (
	"encoding/json"
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
