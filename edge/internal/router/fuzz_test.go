package router

import (
	"context"
	"encoding/json"
	"testing"
)

// FuzzHandle checks the one-reply rule on arbitrary input: every frame gets exactly one
// reply, a JSON object with a non-empty pid of at most 64 bytes and a type.
func FuzzHandle(f *testing.F) {
	for _, s := range []string{
		`{"type":"GET_CHAT_LIST"}`, `{"pid":"x","type":"SEND_CHAT_MESSAGE","payload":{"toUserId":2,"text":"a"}}`,
		`{"pid":5}`, `[]`, `null`, ``, `{"type":"UPDATE_MY_PROFILE","payload":{"curriculum":{"skills":[{"id":"1"}]}}}`,
		`{"type":"GET_CHAT_MESSAGES","payload":{"chatId":"1","limit":1e309}}`,
	} {
		f.Add([]byte(s))
	}
	fx := newFixture(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		out := fx.r.Handle(context.Background(), caller, data)
		var r struct {
			PID  *string `json:"pid"`
			Type string  `json:"type"`
		}
		if err := json.Unmarshal(out, &r); err != nil {
			t.Fatalf("reply %q is not JSON: %v", out, err)
		}
		if r.PID == nil || *r.PID == "" || len(*r.PID) > 64 || r.Type == "" {
			t.Fatalf("reply %s: want a pid and a type", out)
		}
	})
}
