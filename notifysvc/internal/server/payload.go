package server

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/charla/charla/notifysvc/internal/notify"
)

// EncodePayload turns a payload into the compact JSON stored in the Payload column
// (notify.EmptyPayload for none): compact, keys sorted, no HTML escaping. encoding/json is
// used rather than protojson because its output is stable, so the 4 KiB limit means the same thing for the same payload.
func EncodePayload(p *structpb.Struct) (string, error) {
	if p == nil || len(p.GetFields()) == 0 {
		return notify.EmptyPayload, nil
	}
	// Without HTML escaping, so "<" counts as one byte of the limit, not six.
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(p.AsMap()); err != nil {
		// Not expected: AsMap already turns NaN and infinities into strings, as protojson does.
		return "", notify.Invalid("payload", "must be a JSON object")
	}
	return strings.TrimSuffix(b.String(), "\n"), nil
}

// DecodePayload turns a stored payload back into a Struct. Decoding is on the path of every
// page (50 payloads), where protojson cost as much as the query, so the compact JSON that
// EncodePayload writes is read by a small direct parser; anything it does not handle
// (escapes in strings, deep nesting, anything malformed) goes to protojson, which decides.
func DecodePayload(s string) (*structpb.Struct, error) {
	if s == notify.EmptyPayload || s == "" {
		return &structpb.Struct{}, nil
	}
	p := payloadParser{s: s}
	if st, ok := p.object(0); ok && p.i == len(s) {
		return st, nil
	}
	st := new(structpb.Struct)
	if err := protojson.Unmarshal([]byte(s), st); err != nil {
		return nil, fmt.Errorf("decode payload: %w", err)
	}
	return st, nil
}

// maxFastDepth is the nesting the direct parser handles before leaving it to protojson.
const maxFastDepth = 32

// payloadParser reads the subset of JSON that json.Marshal writes for a payload without
// escapes: no white space, strings without backslashes. It reports false for anything else.
type payloadParser struct {
	s string
	i int
}

func (p *payloadParser) object(depth int) (*structpb.Struct, bool) {
	if depth > maxFastDepth || p.i >= len(p.s) || p.s[p.i] != '{' {
		return nil, false
	}
	p.i++
	st := &structpb.Struct{Fields: map[string]*structpb.Value{}}
	if p.i < len(p.s) && p.s[p.i] == '}' {
		p.i++
		return st, true
	}
	for {
		key, ok := p.str()
		if !ok || p.i >= len(p.s) || p.s[p.i] != ':' {
			return nil, false
		}
		p.i++
		if _, dup := st.Fields[key]; dup {
			return nil, false
		}
		v, ok := p.value(depth + 1)
		if !ok {
			return nil, false
		}
		st.Fields[key] = v
		if p.i >= len(p.s) {
			return nil, false
		}
		switch p.s[p.i] {
		case ',':
			p.i++
		case '}':
			p.i++
			return st, true
		default:
			return nil, false
		}
	}
}

func (p *payloadParser) array(depth int) (*structpb.ListValue, bool) {
	if depth > maxFastDepth {
		return nil, false
	}
	p.i++ // '['
	list := &structpb.ListValue{Values: []*structpb.Value{}}
	if p.i < len(p.s) && p.s[p.i] == ']' {
		p.i++
		return list, true
	}
	for {
		v, ok := p.value(depth + 1)
		if !ok || p.i >= len(p.s) {
			return nil, false
		}
		list.Values = append(list.Values, v)
		switch p.s[p.i] {
		case ',':
			p.i++
		case ']':
			p.i++
			return list, true
		default:
			return nil, false
		}
	}
}

func (p *payloadParser) value(depth int) (*structpb.Value, bool) {
	if p.i >= len(p.s) {
		return nil, false
	}
	switch c := p.s[p.i]; {
	case c == '{':
		st, ok := p.object(depth)
		return structpb.NewStructValue(st), ok
	case c == '[':
		list, ok := p.array(depth)
		return structpb.NewListValue(list), ok
	case c == '"':
		s, ok := p.str()
		return structpb.NewStringValue(s), ok
	case c == 't':
		return structpb.NewBoolValue(true), p.literal("true")
	case c == 'f':
		return structpb.NewBoolValue(false), p.literal("false")
	case c == 'n':
		return structpb.NewNullValue(), p.literal("null")
	case c == '-' || '0' <= c && c <= '9':
		return p.number()
	}
	return nil, false
}

func (p *payloadParser) literal(word string) bool {
	if len(p.s)-p.i < len(word) || p.s[p.i:p.i+len(word)] != word {
		return false
	}
	p.i += len(word)
	return true
}

// str reads a string without escapes or control characters.
func (p *payloadParser) str() (string, bool) {
	if p.i >= len(p.s) || p.s[p.i] != '"' {
		return "", false
	}
	start := p.i + 1
	for j := start; j < len(p.s); j++ {
		switch c := p.s[j]; {
		case c == '"':
			s := p.s[start:j]
			if !utf8.ValidString(s) {
				return "", false
			}
			p.i = j + 1
			return s, true
		case c == '\\' || c < 0x20:
			return "", false
		}
	}
	return "", false
}

// number reads a JSON number: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (p *payloadParser) number() (*structpb.Value, bool) {
	start, j := p.i, p.i
	digits := func() bool {
		k := j
		for j < len(p.s) && '0' <= p.s[j] && p.s[j] <= '9' {
			j++
		}
		return j > k
	}
	if j < len(p.s) && p.s[j] == '-' {
		j++
	}
	if j < len(p.s) && p.s[j] == '0' {
		j++
	} else if !digits() {
		return nil, false
	}
	if j < len(p.s) && p.s[j] == '.' {
		j++
		if !digits() {
			return nil, false
		}
	}
	if j < len(p.s) && (p.s[j] == 'e' || p.s[j] == 'E') {
		j++
		if j < len(p.s) && (p.s[j] == '+' || p.s[j] == '-') {
			j++
		}
		if !digits() {
			return nil, false
		}
	}
	f, err := strconv.ParseFloat(p.s[start:j], 64)
	if err != nil {
		return nil, false
	}
	p.i = j
	return structpb.NewNumberValue(f), true
}
