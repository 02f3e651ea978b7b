package svcerr_test

import (
	"bytes"
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"connectrpc.com/connect"

	"github.com/charla/charla/shared/svcerr"
)

// TestToConnect: every kind of failure gets its code and a message without internals;
// only the failures that are not the client's are logged.
func TestToConnect(t *testing.T) {
	t.Parallel()
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	for _, tt := range []struct {
		name    string
		ctx     context.Context
		err     error
		code    connect.Code
		message string
		logged  bool
	}{
		{"domain", nil, fmt.Errorf("create: %w", svcerr.Errorf(svcerr.CodeInvalid, "text: must not be empty")), connect.CodeInvalidArgument, "text: must not be empty", false},
		{"too long", nil, svcerr.Errorf(svcerr.CodeTooLong, "text: too long"), connect.CodeOutOfRange, "text: too long", false},
		{"not found", nil, svcerr.Errorf(svcerr.CodeNotFound, "chat not found"), connect.CodeNotFound, "chat not found", false},
		{"forbidden", nil, svcerr.Errorf(svcerr.CodeForbidden, "not a contact"), connect.CodePermissionDenied, "not a contact", false},
		{"conflict", nil, svcerr.Errorf(svcerr.CodeConflict, "email: taken"), connect.CodeAlreadyExists, "email: taken", false},
		{"unauthenticated", nil, svcerr.Errorf(svcerr.CodeUnauthenticated, "unknown session"), connect.CodeUnauthenticated, "unknown session", false},
		{"domain unavailable", nil, fmt.Errorf("%w (dial tcp: refused)", svcerr.Errorf(svcerr.CodeUnavailable, "profile service unavailable")), connect.CodeUnavailable, "profile service unavailable", true},
		{"deadline", nil, fmt.Errorf("query: %w", context.DeadlineExceeded), connect.CodeDeadlineExceeded, "deadline exceeded", true},
		{"canceled", canceled, errors.New("select: interrupted"), connect.CodeCanceled, "canceled", false},
		{"peer", nil, svcerr.Peer("profile", connect.NewError(connect.CodeInternal, errors.New("boom"))), connect.CodeUnavailable, "profile service unavailable", true},
		{"database unreachable", nil, fmt.Errorf("begin: %w", driver.ErrBadConn), connect.CodeUnavailable, "chat service temporarily unavailable", true},
		{"anything else", nil, errors.New("SELECT Secret FROM T: syntax error"), connect.CodeInternal, "internal error", true},
	} {
		var logs bytes.Buffer
		m := svcerr.Mapper{Service: "chat", Log: slog.New(slog.NewTextHandler(&logs, nil))}
		ctx := tt.ctx
		if ctx == nil {
			ctx = context.Background()
		}
		got := m.ToConnect(ctx, "send message", tt.err, "user_id", 7)
		var ce *connect.Error
		if !errors.As(got, &ce) || ce.Code() != tt.code || ce.Message() != tt.message {
			t.Errorf("%s: got %v, want %v %q", tt.name, got, tt.code, tt.message)
		}
		if logged := logs.Len() > 0; logged != tt.logged {
			t.Errorf("%s: logged %v (%q), want %v", tt.name, logged, logs.String(), tt.logged)
		}
		if tt.logged && !strings.Contains(logs.String(), "user_id=7") {
			t.Errorf("%s: log line %q lacks the attributes", tt.name, logs.String())
		}
	}
}

// TestCodeOf: the code of a wrapped domain error, 0 for any other error.
func TestCodeOf(t *testing.T) {
	t.Parallel()
	if got := svcerr.CodeOf(fmt.Errorf("x: %w", svcerr.Errorf(svcerr.CodeConflict, "taken"))); got != svcerr.CodeConflict {
		t.Errorf("CodeOf(wrapped conflict) = %v, want %v", got, svcerr.CodeConflict)
	}
	if got := svcerr.CodeOf(errors.New("plain")); got != 0 {
		t.Errorf("CodeOf(plain) = %v, want 0", got)
	}
}
