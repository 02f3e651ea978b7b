package frames

import (
	"bytes"
	"encoding/json"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/tidwall/gjson"
)

// Object is a parsed payload object: its keys, exact case, with their raw values. A key
// whose value is null is treated as absent by every getter.
type Object map[string]json.RawMessage

// ParseObject parses a payload that must be an object; nil (absent or null) is the empty
// object. name is the payload's name in error messages ("payload", "curriculum").
func ParseObject(raw json.RawMessage, name string) (Object, *Error) {
	if len(raw) == 0 || bytes.Equal(raw, nullLiteral) {
		return Object{}, nil
	}
	if !isObject(raw) || !json.Valid(raw) {
		return nil, Invalid("%s must be an object", name)
	}
	// Walked with gjson, as ParseFrame does, rather than decoded into the map by
	// reflection; names are decoded as encoding/json decodes them and a repeated name keeps
	// its last value (FuzzPayloadFields holds the two equal).
	o := Object{}
	gjson.ParseBytes(raw).ForEach(func(key, value gjson.Result) bool {
		name, _ := jsonString(key.Raw) // a member name of a valid object is a string
		o[name] = json.RawMessage(value.Raw)
		return true
	})
	return o, nil
}

// get returns the raw value of key, or nil when it is absent or null.
func (o Object) get(key string) json.RawMessage {
	raw, ok := o[key]
	if !ok || bytes.Equal(raw, nullLiteral) {
		return nil
	}
	return raw
}

// Has reports whether key is present and not null.
func (o Object) Has(key string) bool { return o.get(key) != nil }

// Unknown returns the keys of o not in allowed, sorted, so that an error can name them.
func (o Object) Unknown(allowed ...string) []string {
	var out []string
	for k := range o {
		if !slices.Contains(allowed, k) {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}

// parseInteger parses a JSON number literal that must be an integer written without a
// fraction or exponent and must fit int64: "2" and "-3" pass; "2.0", "2e3", "1e400",
// "9223372036854775808" do not. Rounding to another id is never an option.
func parseInteger(raw json.RawMessage) (int64, bool) {
	s := string(raw)
	digits := strings.TrimPrefix(s, "-")
	if digits == "" || (len(digits) > 1 && digits[0] == '0') {
		return 0, false
	}
	for i := 0; i < len(digits); i++ {
		if digits[i] < '0' || digits[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, false
	}
	return n, true
}

// UserID reads a user id: a positive JSON integer. It returns 0 when the key is absent and
// not required.
func (o Object) UserID(key string, required bool) (int64, *Error) {
	raw := o.get(key)
	if raw == nil {
		if required {
			return 0, Invalid("%s is required", key)
		}
		return 0, nil
	}
	n, ok := parseInteger(raw)
	if !ok || n <= 0 {
		return 0, Invalid("%s must be a positive integer user id", key)
	}
	return n, nil
}

// ParseID parses a chat, message or notification id: the decimal string of a positive
// int64 without sign or leading zeros.
func ParseID(s string) (int64, bool) {
	if s == "" || s[0] == '0' {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil
}

// FormatID formats an id for the wire.
func FormatID(id int64) string { return strconv.FormatInt(id, 10) }

// ID reads a chat, message or notification id given as a decimal string. It returns 0 when
// the key is absent and not required.
func (o Object) ID(key string, required bool) (int64, *Error) {
	raw := o.get(key)
	if raw == nil {
		if required {
			return 0, Invalid("%s is required", key)
		}
		return 0, nil
	}
	var s string
	if raw[0] != '"' || json.Unmarshal(raw, &s) != nil {
		return 0, Invalid("%s must be a string holding a positive decimal id", key)
	}
	n, ok := ParseID(s)
	if !ok {
		return 0, Invalid("%s must be a string holding a positive decimal id", key)
	}
	return n, nil
}

// Int reads an optional JSON integer within [min, max]; def when absent.
func (o Object) Int(key string, def, min, max int64) (int64, *Error) {
	raw := o.get(key)
	if raw == nil {
		return def, nil
	}
	n, ok := parseInteger(raw)
	if !ok || n < min || n > max {
		return 0, Invalid("%s must be an integer from %d to %d", key, min, max)
	}
	return n, nil
}

// Int32 reads an optional JSON integer that fits int32; nil when absent.
func (o Object) Int32(key string) (*int32, *Error) {
	raw := o.get(key)
	if raw == nil {
		return nil, nil
	}
	n, ok := parseInteger(raw)
	if !ok || n < math.MinInt32 || n > math.MaxInt32 {
		return nil, Invalid("%s must be an integer", key)
	}
	v := int32(n)
	return &v, nil
}

// String reads an optional string; nil when absent.
func (o Object) String(key string) (*string, *Error) {
	raw := o.get(key)
	if raw == nil {
		return nil, nil
	}
	s, ok := jsonString(string(raw))
	if !ok {
		return nil, Invalid("%s must be a string", key)
	}
	return &s, nil
}

// RequiredString reads a string that must be present.
func (o Object) RequiredString(key string) (string, *Error) {
	s, err := o.String(key)
	if err != nil {
		return "", err
	}
	if s == nil {
		return "", Invalid("%s is required", key)
	}
	return *s, nil
}

// Bool reads an optional boolean; false when absent.
func (o Object) Bool(key string) (value, present bool, err *Error) {
	raw := o.get(key)
	switch {
	case raw == nil:
		return false, false, nil
	case bytes.Equal(raw, []byte("true")):
		return true, true, nil
	case bytes.Equal(raw, []byte("false")):
		return false, true, nil
	}
	return false, false, Invalid("%s must be a boolean", key)
}

// Array reads an optional array of raw elements; present is false when absent or null.
func (o Object) Array(key string) (items []json.RawMessage, present bool, err *Error) {
	raw := o.get(key)
	if raw == nil {
		return nil, false, nil
	}
	if raw[0] != '[' || json.Unmarshal(raw, &items) != nil {
		return nil, false, Invalid("%s must be an array", key)
	}
	if items == nil {
		items = []json.RawMessage{}
	}
	return items, true, nil
}
