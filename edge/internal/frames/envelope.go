package frames

import (
	"encoding/json"
	"fmt"
	"strconv"
	"unicode/utf8"

	"github.com/tidwall/gjson"
)

// MaxPIDBytes is the longest pid a client may send (docs/protocol.md §3.2).
const MaxPIDBytes = 64

// Error is a reply-worthy failure: an ERROR_NOTIFICATION code (400, 403, 404, 409, 413,
// 429, 500, 503, 504) and a message safe to show a client.
type Error struct {
	Code    int
	Message string
}

func (e *Error) Error() string { return strconv.Itoa(e.Code) + ": " + e.Message }

// Invalid returns a 400 error with a formatted message that names the field.
func Invalid(format string, args ...any) *Error {
	return &Error{Code: 400, Message: fmt.Sprintf(format, args...)}
}

// Frame is a parsed client frame. Payload is the raw payload (nil when absent or null): it
// is only parsed by the handlers of types that take one, because a payload of any kind on a
// type that takes none is ignored.
type Frame struct {
	// PID is the client's pid, or "" when it gave none (the caller generates one).
	PID string
	// Type is the frame's type, not yet checked against the known types.
	Type string
	// Payload is the raw payload, nil when absent or null.
	Payload json.RawMessage
}

var nullLiteral = []byte("null")

// ParseFrame parses a client frame. On error, pid is the client's pid when it could be read
// and is valid, else "" (the caller then replies with a generated pid).
//
// It validates the frame once (json.Valid) and then walks its top-level members with
// gjson, which reads them in place: decoding the frame into a map of raw values (and pid
// and type again) was 4.7 % of the one-process server's CPU at 5,000 msg/s. Member names
// are decoded as encoding/json decodes them and a repeated name counts its last value, as
// decoding into a map did (FuzzParseFrame holds the two equal).
func ParseFrame(data []byte) (f Frame, err *Error) {
	if !isObject(data) {
		return f, Invalid("frame must be a JSON object")
	}
	if !json.Valid(data) {
		return f, Invalid("frame is not valid JSON")
	}
	var pidRaw, typeRaw, payloadRaw string
	var hasPID, hasType, hasPayload bool
	gjson.ParseBytes(data).ForEach(func(key, value gjson.Result) bool {
		name, _ := jsonString(key.Raw) // a member name of a valid object is a string
		switch name {
		case "pid":
			pidRaw, hasPID = value.Raw, true
		case "type":
			typeRaw, hasType = value.Raw, true
		case "payload":
			payloadRaw, hasPayload = value.Raw, true
		}
		return true
	})
	if hasPID && pidRaw != "null" {
		pid, ok := jsonString(pidRaw)
		if !ok || len(pid) > MaxPIDBytes {
			return f, Invalid("pid must be a string of 1-%d bytes", MaxPIDBytes)
		}
		f.PID = pid
	}
	if !hasType || typeRaw == "null" {
		return f, Invalid("type is required")
	}
	typ, ok := jsonString(typeRaw)
	if !ok {
		return f, Invalid("type must be a string")
	}
	f.Type = typ
	if hasPayload && payloadRaw != "null" {
		f.Payload = json.RawMessage(payloadRaw)
	}
	return f, nil
}

// jsonString decodes raw, a JSON value, as a string: false when it is not one. A string
// without escapes is its own text (encoding/json returns the same); any other is decoded by
// encoding/json, which also rejects what is not valid JSON.
func jsonString(raw string) (string, bool) {
	if len(raw) < 2 || raw[0] != '"' {
		return "", false
	}
	if inner := raw[1 : len(raw)-1]; raw[len(raw)-1] == '"' && plainJSONText(inner) {
		return inner, true
	}
	var s string
	if json.Unmarshal([]byte(raw), &s) != nil {
		return "", false
	}
	return s, true
}

// plainJSONText reports whether s may stand between quotes in JSON as it is: valid UTF-8
// with no quote, backslash or control character.
func plainJSONText(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c == '"' || c == '\\' || c < 0x20 {
			return false
		}
	}
	return utf8.ValidString(s)
}

// isObject reports whether data, after leading white space, starts an object.
func isObject(data []byte) bool {
	for _, c := range data {
		switch c {
		case ' ', '\t', '\r', '\n':
			continue
		case '{':
			return true
		default:
			return false
		}
	}
	return false
}

// Reply is a server-to-client frame.
type Reply struct {
	PID     string `json:"pid"`
	Type    string `json:"type"`
	Payload any    `json:"payload"`
}

// ErrorPayload is the payload of ERROR_NOTIFICATION (docs/protocol.md §3.5).
type ErrorPayload struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

// Marshal encodes a reply frame.
func Marshal(pid, typ string, payload any) []byte {
	b, err := json.Marshal(Reply{PID: pid, Type: typ, Payload: payload})
	if err != nil {
		// Payloads are our own types and always encode; this is a programming error, and
		// the client still gets its one reply.
		return MarshalError(pid, 500, "internal error")
	}
	return b
}

// MarshalError encodes an ERROR_NOTIFICATION.
func MarshalError(pid string, code int, message string) []byte {
	b, _ := json.Marshal(Reply{PID: pid, Type: TypeErrorNotification, Payload: ErrorPayload{Code: code, Message: message}})
	return b
}

// EventFrame builds an event frame from a payload encoded once (by EncodePayload) and a
// per-connection pid, without encoding the payload again for every connection.
func EventFrame(pid, typ string, payload []byte) []byte {
	b := make([]byte, 0, len(pid)+len(typ)+len(payload)+32)
	b = append(b, `{"pid":`...)
	b = strconv.AppendQuote(b, pid) // pids are ASCII generated by the server
	b = append(b, `,"type":"`...)
	b = append(b, typ...)
	b = append(b, `","payload":`...)
	b = append(b, payload...)
	b = append(b, '}')
	return b
}

// EncodePayload encodes an event payload once for EventFrame.
func EncodePayload(payload any) ([]byte, error) {
	return json.Marshal(payload)
}
