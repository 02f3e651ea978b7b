package router

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/charla/charla/edge/internal/frames"
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

// clientTypes are the types of PROTOCOL.md §4, for FuzzPayloads.
var clientTypes = []string{
	frames.TypeGetChatList, frames.TypeSendChatMessage, frames.TypeMessagesRead, frames.TypeTypingOn, frames.TypeTypingOff,
	frames.TypeGetMyProfile, frames.TypeGetUserProfile, frames.TypeUpdateMyProfile, frames.TypeGetNotifications,
	frames.TypeMarkNotificationRead, frames.TypeGetChatMessages,
}

// FuzzPayloads runs every client type's payload decoder (and the call behind it, on fake
// services) on arbitrary payloads: the one reply echoes the pid and is either a success or
// an ERROR_NOTIFICATION of a code PROTOCOL.md §3 lists — never a 500 for input.
func FuzzPayloads(f *testing.F) {
	seeds := []struct {
		typ     uint8
		payload string
	}{
		{1, `{"toUserId":2,"text":"hola","clientMessageId":"m-1"}`}, {1, `{"chatId":"3","text":"  "}`},
		{1, `{"toUserId":2.5,"text":"x"}`}, {2, `{"chatId":"3","upToMessageId":"9"}`}, {2, `{"chatId":"007"}`},
		{3, `{"chatId":"1"}`}, {6, `{"userId":9223372036854775808}`}, {7, `{"firstName":"Ana","curriculum":{"skills":[]}}`},
		{8, `{"limit":0,"before":"5","unreadOnly":true}`}, {9, `{"all":true,"notificationId":"1"}`},
		{10, `{"chatId":"1","beforeId":"2","afterId":"3"}`}, {10, `{"chatId":"1","limit":201}`}, {0, `[]`}, {5, `7`},
	}
	for _, s := range seeds {
		f.Add(s.typ, []byte(s.payload))
	}
	fx := newFixture(f)
	allowed := map[int]bool{400: true, 403: true, 404: true, 409: true, 413: true}
	f.Fuzz(func(t *testing.T, typ uint8, payload []byte) {
		if !json.Valid(payload) {
			return // the envelope's business (FuzzHandle)
		}
		name := clientTypes[int(typ)%len(clientTypes)]
		frame := []byte(`{"pid":"p-1","type":"` + name + `","payload":` + string(payload) + `}`)
		out := fx.r.Handle(context.Background(), caller, frame)
		var r struct {
			PID     string `json:"pid"`
			Type    string `json:"type"`
			Payload struct {
				Code    int    `json:"code"`
				Message string `json:"message"`
			} `json:"payload"`
		}
		if err := json.Unmarshal(out, &r); err != nil {
			t.Fatalf("%s %s: reply %q is not JSON: %v", name, payload, out, err)
		}
		if r.PID != "p-1" {
			t.Fatalf("%s %s: reply pid %q, want p-1", name, payload, r.PID)
		}
		if r.Type == "ERROR_NOTIFICATION" && (!allowed[r.Payload.Code] || r.Payload.Message == "") {
			t.Fatalf("%s %s: error %d %q, want a 400, 403, 404, 409 or 413 with a message", name, payload, r.Payload.Code, r.Payload.Message)
		}
	})
}
