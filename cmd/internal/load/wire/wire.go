// Package wire writes and reads the few Charla frames the load tool needs (PROTOCOL.md §3)
// without reflection: SEND_CHAT_MESSAGE is appended into a reused buffer, and incoming
// frames are scanned for their envelope keys and a few payload keys without decoding the
// rest. Unknown frame types, keys and envelope fields (protocol v2's CONNECTED and seq)
// are skipped, as every client must.
package wire

import (
	"errors"
	"fmt"
	"strconv"
)

// Frame types the tool looks at.
const (
	TypeSend      = "SEND_CHAT_MESSAGE"
	TypeAck       = "SERVER_ACK"
	TypeError     = "ERROR_NOTIFICATION"
	TypeNewMsg    = "NEW_CHAT_MESSAGE"
	TypeConnected = "CONNECTED"
)

// AppendSend appends a SEND_CHAT_MESSAGE frame to dst.
func AppendSend(dst []byte, pid string, toUserID int64, text, clientMessageID string) []byte {
	dst = append(dst, `{"type":"SEND_CHAT_MESSAGE","pid":`...)
	dst = AppendString(dst, pid)
	dst = append(dst, `,"payload":{"toUserId":`...)
	dst = strconv.AppendInt(dst, toUserID, 10)
	dst = append(dst, `,"text":`...)
	dst = AppendString(dst, text)
	dst = append(dst, `,"clientMessageId":`...)
	dst = AppendString(dst, clientMessageID)
	return append(dst, "}}"...)
}

// AppendString appends s as a JSON string. It escapes quotes, backslashes and control
// characters; other bytes (UTF-8 included) are copied as they are.
func AppendString(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			dst = append(dst, '\\', c)
		case c < 0x20:
			dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		default:
			dst = append(dst, c)
		}
	}
	return append(dst, '"')
}

// Frame is what Scan found in a server frame. The slices point into the scanned bytes and
// are valid only as long as those are.
type Frame struct {
	Type    []byte // the envelope's "type", raw (without quotes)
	PID     []byte // the envelope's "pid", raw
	Payload []byte // the envelope's "payload" value, a JSON object or nil
	// Seq is the envelope's "seq" (protocol v2 §8.2: a per-user event number from 1); 0
	// when absent or not a non-negative integer.
	Seq int64
}

// Scan reads the envelope of a server frame: a JSON object whose "type" and "pid" are
// strings, and its "seq" when present. Other keys (anything new) are skipped.
func Scan(b []byte) (Frame, error) {
	var f Frame
	err := fields(b, func(key, val []byte) {
		switch string(key) {
		case "type":
			f.Type = unquote(val)
		case "pid":
			f.PID = unquote(val)
		case "payload":
			f.Payload = val
		case "seq":
			f.Seq = ParseUint(val)
		}
	})
	if err != nil {
		return Frame{}, err
	}
	if f.Type == nil {
		return Frame{}, errors.New("frame without a string \"type\"")
	}
	return f, nil
}

// ParseUint returns the non-negative decimal integer b holds, or 0 when b is anything else
// (empty, signed, fractional, too long).
func ParseUint(b []byte) int64 {
	if len(b) == 0 || len(b) > 18 {
		return 0
	}
	var n int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0
		}
		n = n*10 + int64(c-'0')
	}
	return n
}

// Field returns the raw value of key in a JSON object (strings without their quotes), or
// nil when the object has no such key.
func Field(obj []byte, key string) []byte {
	var found []byte
	_ = fields(obj, func(k, val []byte) {
		if found == nil && string(k) == key {
			found = val
			if len(val) > 0 && val[0] == '"' {
				found = unquote(val)
			}
		}
	})
	return found
}

// unquote strips the quotes of a JSON string value; anything else gives nil.
func unquote(v []byte) []byte {
	if len(v) < 2 || v[0] != '"' {
		return nil
	}
	return v[1 : len(v)-1]
}

// fields calls fn with every key (raw) and value (raw JSON) of the object in b.
func fields(b []byte, fn func(key, val []byte)) error {
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return errors.New("frame is not a JSON object")
	}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		return nil
	}
	for {
		if i >= len(b) || b[i] != '"' {
			return fmt.Errorf("want a key at byte %d", i)
		}
		end, err := skipString(b, i)
		if err != nil {
			return err
		}
		key := b[i+1 : end-1]
		i = skipSpace(b, end)
		if i >= len(b) || b[i] != ':' {
			return fmt.Errorf("want ':' at byte %d", i)
		}
		i = skipSpace(b, i+1)
		end, err = skipValue(b, i)
		if err != nil {
			return err
		}
		fn(key, b[i:end])
		i = skipSpace(b, end)
		if i >= len(b) {
			return errors.New("unterminated object")
		}
		switch b[i] {
		case ',':
			i = skipSpace(b, i+1)
		case '}':
			return nil
		default:
			return fmt.Errorf("want ',' or '}' at byte %d", i)
		}
	}
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// skipString returns the index just past the string that starts at b[i] == '"'.
func skipString(b []byte, i int) (int, error) {
	for j := i + 1; j < len(b); j++ {
		switch b[j] {
		case '\\':
			j++
		case '"':
			return j + 1, nil
		}
	}
	return 0, errors.New("unterminated string")
}

// skipValue returns the index just past the JSON value that starts at b[i].
func skipValue(b []byte, i int) (int, error) {
	if i >= len(b) {
		return 0, errors.New("missing value")
	}
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		depth := 0
		for j := i; j < len(b); j++ {
			switch b[j] {
			case '"':
				end, err := skipString(b, j)
				if err != nil {
					return 0, err
				}
				j = end - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return j + 1, nil
				}
			}
		}
		return 0, errors.New("unterminated object or array")
	default:
		j := i
		for j < len(b) && b[j] != ',' && b[j] != '}' && b[j] != ']' && b[j] != ' ' && b[j] != '\n' && b[j] != '\t' && b[j] != '\r' {
			j++
		}
		if j == i {
			return 0, fmt.Errorf("empty value at byte %d", i)
		}
		return j, nil
	}
}
