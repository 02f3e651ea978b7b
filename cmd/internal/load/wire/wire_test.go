package wire

import (
	"encoding/json"
	"testing"
)

func TestAppendSendIsValidJSON(t *testing.T) {
	t.Parallel()
	b := AppendSend(nil, "c-1", 42, "hola \"x\" \\ \n ñ 🎉", "L17")
	var got struct {
		Type    string `json:"type"`
		PID     string `json:"pid"`
		Payload struct {
			ToUserID        int64  `json:"toUserId"`
			Text            string `json:"text"`
			ClientMessageID string `json:"clientMessageId"`
		} `json:"payload"`
	}
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	if got.Type != TypeSend || got.PID != "c-1" || got.Payload.ToUserID != 42 ||
		got.Payload.Text != "hola \"x\" \\ \n ñ 🎉" || got.Payload.ClientMessageID != "L17" {
		t.Errorf("decoded %+v from %s", got, b)
	}
}

func TestScan(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, frame, typ, pid, cmid, code string
		seq                               int64
	}{
		{"v1 event", `{"pid":"s-1","type":"NEW_CHAT_MESSAGE","payload":{"id":"5","text":"a \"type\": b","clientMessageId":"L9","status":"sent_to_server"}}`, TypeNewMsg, "s-1", "L9", "", 0},
		{"v2 event with seq first", ` { "seq" : 12 , "type":"NEW_CHAT_MESSAGE", "pid":"s-2","payload":{"nested":{"clientMessageId":"no"},"clientMessageId":"L10"}}`, TypeNewMsg, "s-2", "L10", "", 12},
		{"payload before type", `{"payload":{"type":"new_message","x":[1,{"y":"}"}]},"type":"NEW_NOTIFICATION","pid":"p"}`, "NEW_NOTIFICATION", "p", "", "", 0},
		{"error", `{"pid":"c-3","type":"ERROR_NOTIFICATION","payload":{"code":429,"message":"rate limited"}}`, TypeError, "c-3", "", "429", 0},
		{"connected", `{"type":"CONNECTED","pid":"s","payload":{"userId":1,"lastSeq":0,"resume":"none"}}`, TypeConnected, "s", "", "", 0},
		{"null payload", `{"type":"SERVER_ACK","pid":"c","payload":null}`, TypeAck, "c", "", "", 0},
		// As the edge writes it (edge/internal/frames.SeqEventFrame), with a payload key
		// "seq" that is not the envelope's.
		{"v2 presence", `{"pid":"s-9f","type":"PRESENCE_EVENT","seq":1234567,"payload":{"userId":3,"event":"user_online","seq":5}}`, "PRESENCE_EVENT", "s-9f", "", "", 1234567},
		{"negative seq", `{"type":"X","pid":"p","seq":-3}`, "X", "p", "", "", 0},
		{"string seq", `{"type":"X","pid":"p","seq":"4"}`, "X", "p", "", "", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f, err := Scan([]byte(tc.frame))
			if err != nil {
				t.Fatal(err)
			}
			if string(f.Type) != tc.typ || string(f.PID) != tc.pid {
				t.Errorf("type, pid = %q, %q, want %q, %q", f.Type, f.PID, tc.typ, tc.pid)
			}
			if got := string(Field(f.Payload, "clientMessageId")); got != tc.cmid {
				t.Errorf("clientMessageId = %q, want %q", got, tc.cmid)
			}
			if f.Seq != tc.seq {
				t.Errorf("seq = %d, want %d", f.Seq, tc.seq)
			}
			if got := string(Field(f.Payload, "code")); got != tc.code {
				t.Errorf("code = %q, want %q", got, tc.code)
			}
		})
	}
}

func TestScanRejectsBrokenFrames(t *testing.T) {
	t.Parallel()
	for _, bad := range []string{``, `[]`, `{"pid":"x"}`, `{"type":1}`, `{"type":"A"`, `{"type":"A" "pid":"b"}`, `{"type":"A","payload":{"x":"}`, `{"type":}`} {
		if _, err := Scan([]byte(bad)); err == nil {
			t.Errorf("Scan(%q): no error", bad)
		}
	}
}

func BenchmarkScanNewMessage(b *testing.B) {
	frame := []byte(`{"pid":"s-1","type":"NEW_CHAT_MESSAGE","seq":7,"payload":{"id":"123456","chatId":"77","fromUserId":1001,"toUserId":1002,"text":"load 123456 hola, esto es una prueba","timestamp":1700000000000,"status":"sent_to_server","clientMessageId":"L123456","fromUsername":"ldabc-1001"}}`)
	b.ReportAllocs()
	for b.Loop() {
		f, err := Scan(frame)
		if err != nil || Field(f.Payload, "clientMessageId") == nil {
			b.Fatal("scan failed")
		}
	}
}
