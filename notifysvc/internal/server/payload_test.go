package server

import (
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
)

// viaProtojson is the reference decoding.
func viaProtojson(s string) (*structpb.Struct, error) {
	st := new(structpb.Struct)
	err := protojson.Unmarshal([]byte(s), st)
	return st, err
}

func TestDecodePayloadMatchesProtojson(t *testing.T) {
	t.Parallel()
	for _, in := range []string{
		`{}`,
		`{"chatId":"12","fromUserId":2}`,
		`{"a":[],"b":{},"c":[1,-0.5,1e21,1.7976931348623157e+308,5e-324,0,-0],"d":null,"e":true,"f":false}`,
		`{"nested":{"x":[{"y":[[["z"]]]}]}}`,
		`{"emoji":"😀 ñ","esc":"tab\tquote\"back\\slash\u00e9\ud83d\ude00"}`,
		`{"html":"\u003cb\u003e \u0026"}`,
		`{ "spaced" : 1 }`,
		`{"k":"v",}`,
		`{"k":01}`,
		`{"dup":1,"dup":2}`,
		`[1,2]`,
		`{"k":"v"} trailing`,
		`{"k":tru}`,
		`{"k":1.}`,
		`{"k":-}`,
		`{"unterminated":"abc`,
		"{\"bad\":\"\xff\"}",
	} {
		want, wantErr := viaProtojson(in)
		got, err := DecodePayload(in)
		if (err != nil) != (wantErr != nil) {
			t.Errorf("DecodePayload(%s): got error %v, protojson %v", in, err, wantErr)
			continue
		}
		if err == nil && !proto.Equal(got, want) {
			t.Errorf("DecodePayload(%s): got %v, want %v", in, got, want)
		}
	}
}

func TestEncodeDecodeRoundTrip(t *testing.T) {
	t.Parallel()
	in, err := structpb.NewStruct(map[string]any{
		"userId": 2.0, "userName": "bob", "quote": `a "b" \c`, "html": "<b> & </b>", "list": []any{1.0, "x", nil, true, map[string]any{}},
	})
	if err != nil {
		t.Fatal(err)
	}
	enc, err := EncodePayload(in)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(enc, `\u003c`) || strings.HasSuffix(enc, "\n") {
		t.Fatalf("EncodePayload: got %s, want no HTML escapes and no trailing newline", enc)
	}
	got, err := DecodePayload(enc)
	if err != nil {
		t.Fatalf("DecodePayload(%s): %v", enc, err)
	}
	if !proto.Equal(got, in) {
		t.Fatalf("round trip: got %v, want %v", got, in)
	}
}

func FuzzDecodePayload(f *testing.F) {
	for _, s := range []string{`{}`, `{"a":[1,{"b":null}],"c":"d"}`, `{"e":1e5}`, `{"x":"\n"}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		want, wantErr := viaProtojson(in)
		got, err := DecodePayload(in)
		if in == "" {
			return // stored payloads are never empty; DecodePayload reads "" as {}
		}
		if (err != nil) != (wantErr != nil) {
			t.Fatalf("DecodePayload(%q): got error %v, protojson %v", in, err, wantErr)
		}
		if err == nil && !proto.Equal(got, want) {
			t.Fatalf("DecodePayload(%q): got %v, want %v", in, got, want)
		}
	})
}

func BenchmarkDecodePayload(b *testing.B) {
	const in = `{"chatId":"12","fromUserId":2,"userName":"bob"}`
	b.Run("direct", func(b *testing.B) {
		for b.Loop() {
			if _, err := DecodePayload(in); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("protojson", func(b *testing.B) {
		for b.Loop() {
			if _, err := viaProtojson(in); err != nil {
				b.Fatal(err)
			}
		}
	})
}
