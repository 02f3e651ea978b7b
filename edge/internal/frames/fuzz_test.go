package frames

import (
	"encoding/json"
	"errors"
	"maps"
	"regexp"
	"strconv"
	"testing"
	"unicode/utf8"
)

// The fuzz targets of the client-facing decoders. Their seed corpus is in testdata/fuzz;
// `make fuzz` runs each for FUZZTIME. Each asserts what PROTOCOL.md §3 promises of any
// input, not only that nothing panics.

// FuzzParseFrame: any bytes either parse into a frame whose pid fits and whose payload is
// what was sent, or fail with a 400; a parsed frame survives a round trip; and the result
// is exactly what decoding the frame into a map gave (parseFrameByMap, the implementation
// ParseFrame replaced), error messages included.
func FuzzParseFrame(f *testing.F) {
	for _, s := range []string{
		`{"type":"GET_CHAT_LIST"}`, `{"pid":"c-1","type":"SEND_CHAT_MESSAGE","payload":{"toUserId":2,"text":"hola"}}`,
		`{"pid":null,"type":"X","payload":null}`, `{"pid":5,"type":"X"}`, `  {"type":"A","type":"B"}`,
		`[]`, `null`, ``, `{`, `{"pid":"` + string(make([]byte, 65)) + `","type":"X"}`,
		`{"typ\u0065":"A","p\u0069d":"x\ny","payload":[1, {"a":"}"}] }`, `{"pid":"a","pid":"b","type":"T","payload":{},"payload":null}`,
		`{"pid":"\ud800","type":"\u00e9"}`, "{\"pid\":\"\xff\",\"type\":\"X\"}", `{"type":"X"} x`, `{"type":"X","payload": "s" }`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fr, err := ParseFrame(data)
		want, wantErr := parseFrameByMap(data)
		if fr.PID != want.PID || fr.Type != want.Type || string(fr.Payload) != string(want.Payload) || (fr.Payload == nil) != (want.Payload == nil) ||
			(err == nil) != (wantErr == nil) || (err != nil && *err != *wantErr) {
			t.Fatalf("ParseFrame(%q) = %+v, %v; decoding into a map gave %+v, %v", data, fr, err, want, wantErr)
		}
		if err != nil {
			if err.Code != 400 || err.Message == "" {
				t.Fatalf("ParseFrame(%q) error %+v, want a 400 with a message", data, err)
			}
			if len(fr.PID) > MaxPIDBytes {
				t.Fatalf("ParseFrame(%q) kept a pid of %d bytes", data, len(fr.PID))
			}
			return
		}
		if len(fr.PID) > MaxPIDBytes {
			t.Fatalf("ParseFrame(%q) pid of %d bytes, want at most %d", data, len(fr.PID), MaxPIDBytes)
		}
		again, err := ParseFrame(Marshal(fr.PID, fr.Type, fr.Payload))
		if err != nil {
			t.Fatalf("re-parsing %q: %v", data, err)
		}
		if again.PID != fr.PID || again.Type != fr.Type || !jsonEqual(again.Payload, fr.Payload) {
			t.Fatalf("round trip of %q: got %+v, want %+v", data, again, fr)
		}
	})
}

// parseFrameByMap is ParseFrame as it was before it read frames with gjson: the frame
// decoded into a map of raw values, then pid and type decoded again.
func parseFrameByMap(data []byte) (f Frame, err *Error) {
	var top map[string]json.RawMessage
	if !isObject(data) {
		return f, Invalid("frame must be a JSON object")
	}
	if e := json.Unmarshal(data, &top); e != nil {
		return f, Invalid("frame is not valid JSON")
	}
	if raw, ok := top["pid"]; ok && string(raw) != "null" {
		var pid string
		if raw[0] != '"' || json.Unmarshal(raw, &pid) != nil || len(pid) > MaxPIDBytes {
			return f, Invalid("pid must be a string of 1-%d bytes", MaxPIDBytes)
		}
		f.PID = pid
	}
	raw, ok := top["type"]
	if !ok || string(raw) == "null" {
		return f, Invalid("type is required")
	}
	if raw[0] != '"' || json.Unmarshal(raw, &f.Type) != nil {
		return f, Invalid("type must be a string")
	}
	if p, ok := top["payload"]; ok && string(p) != "null" {
		f.Payload = p
	}
	return f, nil
}

// jsonEqual compares two JSON values by meaning (nil is absent).
func jsonEqual(a, b json.RawMessage) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	xa, _ := json.Marshal(x)
	ya, _ := json.Marshal(y)
	return string(xa) == string(ya)
}

// idPattern is PROTOCOL.md §3's id: a positive decimal without sign or leading zeros.
var idPattern = regexp.MustCompile(`^[1-9][0-9]*$`)

// FuzzParseID: ParseID accepts exactly the positive decimal ids that fit int64, and only
// gives back the number written.
func FuzzParseID(f *testing.F) {
	for _, s := range []string{"1", "42", "0", "007", "-1", "+1", "1e3", "9223372036854775807", "9223372036854775808", "", " 1", "１"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, ok := ParseID(s)
		_, rangeErr := strconv.ParseInt(s, 10, 64)
		want := idPattern.MatchString(s) && rangeErr == nil
		if ok != want {
			t.Fatalf("ParseID(%q) ok = %v, want %v", s, ok, want)
		}
		if ok && (n <= 0 || FormatID(n) != s) {
			t.Fatalf("ParseID(%q) = %d, which is not the id written", s, n)
		}
	})
}

// FuzzPayloadFields: every field reader of a payload object accepts only values of its
// JSON type and range, never rounds a number to another, and fails with a 400 naming the
// field otherwise; ParseObject and Object.String give what encoding/json's decoding gives.
func FuzzPayloadFields(f *testing.F) {
	for _, s := range []string{
		`{"a":1}`, `{"a":-1}`, `{"a":"12"}`, `{"a":1.0}`, `{"a":1e2}`, `{"a":9223372036854775808}`,
		`{"a":true}`, `{"a":null}`, `{"a":[1,"x",null]}`, `{"a":"\u00e9"}`, `{"a":{}}`, `[]`, `"x"`, `null`,
	} {
		f.Add([]byte(s))
	}
	f.Add([]byte(`{"a":1,"a":"x","\u0062":"\u00e9\n","c":"\ud800"," d ":{"e":[]}}`))
	f.Add([]byte("{\"\xff\":\"\xfe\",\"k\":\"a\tb\"}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		o, err := ParseObject(data, "payload")
		var want Object
		var wantErr error // what ParseObject decoded before gjson: absent and null are empty
		switch {
		case len(data) == 0 || string(data) == "null":
		case !isObject(data):
			wantErr = errors.New("not an object")
		default:
			wantErr = json.Unmarshal(data, &want)
		}
		if (err != nil) != (wantErr != nil) || err == nil && !maps.EqualFunc(o, want, func(a, b json.RawMessage) bool { return string(a) == string(b) }) {
			t.Fatalf("ParseObject(%q) = %q, %v; decoding into a map gave %q, %v", data, o, err, want, wantErr)
		}
		for key, raw := range o {
			if string(raw) == "null" {
				continue // absent to every getter
			}
			var want string
			wantOK := raw[0] == '"' && json.Unmarshal(raw, &want) == nil
			got, gerr := o.String(key)
			if wantOK != (gerr == nil) || wantOK && *got != want {
				t.Fatalf("String(%q) of %q = %v, %v; encoding/json gives %q (a string: %v)", key, data, got, gerr, want, wantOK)
			}
		}
		if err != nil {
			if err.Code != 400 {
				t.Fatalf("ParseObject(%q) code %d, want 400", data, err.Code)
			}
			return
		}
		for key, raw := range o {
			check := func(what string, err *Error) {
				if err != nil && (err.Code != 400 || !containsField(err.Message, key)) {
					t.Fatalf("%s(%q) of %q: error %+v, want a 400 naming the field", what, key, data, err)
				}
			}
			if id, err := o.UserID(key, true); err == nil {
				if id <= 0 || strconv.FormatInt(id, 10) != string(raw) {
					t.Fatalf("UserID(%q) of %q = %d, not the integer written", key, data, id)
				}
			} else {
				check("UserID", err)
			}
			if id, err := o.ID(key, false); err == nil && id != 0 {
				var s string
				if json.Unmarshal(raw, &s) != nil || FormatID(id) != s {
					t.Fatalf("ID(%q) of %q = %d, not the id written", key, data, id)
				}
			} else {
				check("ID", err)
			}
			if n, err := o.Int(key, 7, -5, 5); err == nil && o.Has(key) && (n < -5 || n > 5) {
				t.Fatalf("Int(%q) of %q = %d, outside [-5, 5]", key, data, n)
			} else {
				check("Int", err)
			}
			_, err := o.Int32(key)
			check("Int32", err)
			if s, err := o.String(key); err == nil && s != nil && !utf8.ValidString(*s) && utf8.Valid(raw) {
				t.Fatalf("String(%q) of %q returned invalid UTF-8 from valid input", key, data)
			} else {
				check("String", err)
			}
			_, _, err = o.Bool(key)
			check("Bool", err)
			_, _, err = o.Array(key)
			check("Array", err)
		}
	})
}

// containsField reports whether an error message names the field.
func containsField(msg, key string) bool {
	return len(key) == 0 || regexp.MustCompile(regexp.QuoteMeta(key)).MatchString(msg)
}

// FuzzParseUpdateProfile: any UPDATE_MY_PROFILE payload either becomes a request for the
// caller only, or fails with a 400.
func FuzzParseUpdateProfile(f *testing.F) {
	for _, s := range []string{
		`{"firstName":"Ana","countryId":724}`, `{"email":"x@y"}`, `{"phone":null,"summary":""}`,
		`{"curriculum":{"skills":[{"name":"Go","level":5}],"education":[]}}`,
		`{"curriculum":{"skills":[{"id":"1","name":"Go","rating":5}]}}`, `{"curriculum":{"pets":[]}}`,
		`{"curriculum":{"languages":[{"name":"es","proficiency":"native","countryName":"Spain"}]}}`,
		`{"countryId":2147483648}`, `{"curriculum":null}`, `{"curriculum":[]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		req, err := ParseUpdateProfile(data, 7)
		if err != nil {
			if err.Code != 400 || err.Message == "" {
				t.Fatalf("ParseUpdateProfile(%q) error %+v, want a 400 with a message", data, err)
			}
			return
		}
		if req.GetUserId() != 7 {
			t.Fatalf("ParseUpdateProfile(%q) for user %d, want 7 (the caller)", data, req.GetUserId())
		}
	})
}

// BenchmarkParseFrame reads a typical SEND_CHAT_MESSAGE frame with ParseFrame and with the
// map decoding it replaced.
func BenchmarkParseFrame(b *testing.B) {
	frame := []byte(`{"pid":"c-1842","type":"SEND_CHAT_MESSAGE","payload":{"toUserId":1843,"text":"load test message 1842-17","clientMessageId":"m-1842-17"}}`)
	for _, impl := range []struct {
		name  string
		parse func([]byte) (Frame, *Error)
	}{{"gjson", ParseFrame}, {"map", parseFrameByMap}} {
		b.Run(impl.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := impl.parse(frame); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
