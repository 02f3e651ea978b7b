package rpc

import (
	"errors"
	"fmt"
	"testing"

	"connectrpc.com/connect"
)

func TestItemErrorRoundTrip(t *testing.T) {
	for _, code := range []connect.Code{connect.CodeInvalidArgument, connect.CodeNotFound, connect.CodeUnauthenticated, connect.CodeUnavailable} {
		in := connect.NewError(code, errors.New("edge_id: no lease"))
		name, msg := ItemError(fmt.Errorf("wrapped: %w", in))
		if name != code.String() || msg != "edge_id: no lease" {
			t.Errorf("ItemError(%v) = %q, %q", in, name, msg)
		}
		out := ItemErr(name, msg)
		var ce *connect.Error
		if !errors.As(out, &ce) || ce.Code() != code || ce.Message() != msg {
			t.Errorf("ItemErr(%q, %q) = %v; want code %v and the message", name, msg, out, code)
		}
	}
	if name, msg := ItemError(errors.New("SELECT failed: secret detail")); name != "internal" || msg != "internal error" {
		t.Errorf("ItemError(plain error) = %q, %q; want internal without the text", name, msg)
	}
	if got := connect.CodeOf(ItemErr("no_such_code", "x")); got != connect.CodeUnknown {
		t.Errorf("ItemErr of an unknown code: %v, want unknown", got)
	}
}
