package notify

import (
	"errors"
	"strings"
	"testing"
)

func TestValidateNew(t *testing.T) {
	t.Parallel()
	valid := Notification{UserID: 1, Type: "contact_added", Title: "Hola", Message: "", Payload: EmptyPayload}
	tests := []struct {
		name      string
		edit      func(n *Notification)
		wantField string // "" for valid
	}{
		{"valid", func(n *Notification) {}, ""},
		{"zero user", func(n *Notification) { n.UserID = 0 }, "user_id"},
		{"negative user", func(n *Notification) { n.UserID = -3 }, "user_id"},
		{"empty type", func(n *Notification) { n.Type = "" }, "type"},
		{"upper-case type", func(n *Notification) { n.Type = "Contact" }, "type"},
		{"type with space", func(n *Notification) { n.Type = "a b" }, "type"},
		{"type of 64", func(n *Notification) { n.Type = strings.Repeat("a", 64) }, ""},
		{"type of 65", func(n *Notification) { n.Type = strings.Repeat("a", 65) }, "type"},
		{"type with all allowed", func(n *Notification) { n.Type = "a-z_0.9" }, ""},
		{"empty title", func(n *Notification) { n.Title = "" }, "title"},
		{"blank title", func(n *Notification) { n.Title = " \t" }, "title"},
		{"title of 200 emoji", func(n *Notification) { n.Title = strings.Repeat("😀", 200) }, ""},
		{"title of 201", func(n *Notification) { n.Title = strings.Repeat("é", 201) }, "title"},
		{"invalid UTF-8 title", func(n *Notification) { n.Title = "\xff" }, "title"},
		{"message of 2000 emoji", func(n *Notification) { n.Message = strings.Repeat("😀", 2000) }, ""},
		{"message of 2001", func(n *Notification) { n.Message = strings.Repeat("a", 2001) }, "message"},
		{"payload of 4096", func(n *Notification) { n.Payload = `{"k":"` + strings.Repeat("x", 4088) + `"}` }, ""},
		{"payload of 4097", func(n *Notification) { n.Payload = `{"k":"` + strings.Repeat("x", 4089) + `"}` }, "payload"},
		{"first bad field wins", func(n *Notification) { n.Type = ""; n.Title = "" }, "type"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			n := valid
			tt.edit(&n)
			err := ValidateNew(n)
			var ie *Error
			switch {
			case tt.wantField == "" && err != nil:
				t.Fatalf("ValidateNew: got %v, want nil", err)
			case tt.wantField != "" && (!errors.As(err, &ie) || ie.Code != CodeInvalid):
				t.Fatalf("ValidateNew: got %v, want an invalid-input error for %s", err, tt.wantField)
			case tt.wantField != "" && !strings.HasPrefix(ie.Message, tt.wantField+": "):
				t.Fatalf("ValidateNew: got %q, want a message naming the field %q first", ie.Message, tt.wantField)
			}
		})
	}
}

func TestPageLimit(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      int32
		want    int
		wantErr bool
	}{
		{0, DefaultLimit, false}, {1, 1, false}, {200, 200, false},
		{201, 0, true}, {-1, 0, true},
	}
	for _, tt := range tests {
		got, err := PageLimit(tt.in)
		if got != tt.want || (err != nil) != tt.wantErr {
			t.Errorf("PageLimit(%d): got %d, %v; want %d, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}
