package logging_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/charla/charla/shared/logging"
	"github.com/charla/charla/shared/logging/logtest"
)

func TestTraceIDs(t *testing.T) {
	t.Parallel()
	log, rec := logtest.New(t)
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(tracetest.NewNoopExporter()))
	t.Cleanup(func() { tp.Shutdown(context.Background()) })
	ctx, span := tp.Tracer("test").Start(context.Background(), "op")
	defer span.End()

	log = logging.Component(log, "HANDLER_CHAT")
	log.InfoContext(ctx, "traced", logging.UserID(7), logging.PID("c-1"))
	log.Info("untraced")
	logging.Success(ctx, log, "saved")

	lines := rec.Lines(t)
	if got, want := len(lines), 3; got != want {
		t.Fatalf("lines: got %d, want %d", got, want)
	}
	sc := span.SpanContext()
	for _, tt := range []struct {
		line            map[string]any
		traceID, spanID any
		outcome, userID any
	}{
		{lines[0], sc.TraceID().String(), sc.SpanID().String(), nil, float64(7)},
		{lines[1], nil, nil, nil, nil},
		{lines[2], sc.TraceID().String(), sc.SpanID().String(), "success", nil},
	} {
		if got := tt.line[logging.KeyTraceID]; got != tt.traceID {
			t.Errorf("%v: trace_id: got %v, want %v", tt.line["msg"], got, tt.traceID)
		}
		if got := tt.line[logging.KeySpanID]; got != tt.spanID {
			t.Errorf("%v: span_id: got %v, want %v", tt.line["msg"], got, tt.spanID)
		}
		if got := tt.line[logging.KeyOutcome]; got != tt.outcome {
			t.Errorf("%v: outcome: got %v, want %v", tt.line["msg"], got, tt.outcome)
		}
		if got := tt.line[logging.KeyUserID]; got != tt.userID {
			t.Errorf("%v: user_id: got %v, want %v", tt.line["msg"], got, tt.userID)
		}
		if got, want := tt.line[logging.KeyComponent], "HANDLER_CHAT"; got != want {
			t.Errorf("%v: component: got %v, want %v", tt.line["msg"], got, want)
		}
	}
	if got, want := lines[0][logging.KeyPID], "c-1"; got != want {
		t.Errorf("pid: got %v, want %v", got, want)
	}
}

func TestRedaction(t *testing.T) {
	t.Parallel()
	const tok = "tok_9f8e7d6c5b4a"
	log, rec := logtest.New(t)
	log = log.With("session_token", tok) // through WithAttrs too
	log.Warn("auth failed",
		"token", tok,
		"Authorization", "Bearer "+tok,
		"header", "bearer "+tok, // a bearer value under an innocent key
		slog.Group("req", "password", "hunter2", "refreshToken", tok),
		"user_id", 3,
	)
	if rec.Contains(tok) || rec.Contains("hunter2") {
		t.Errorf("a credential reached the log:\n%s", rec.String())
	}
	l := rec.Lines(t)[0]
	for _, k := range []string{"session_token", "token", "Authorization", "header"} {
		if got := l[k]; got != logging.Redacted {
			t.Errorf("%s: got %v, want %v", k, got, logging.Redacted)
		}
	}
	if got, want := l["user_id"], float64(3); got != want {
		t.Errorf("user_id: got %v, want %v", got, want)
	}
}

func TestTextOnlyAtDebug(t *testing.T) {
	t.Parallel()
	const text = "hola, ¿qué tal?"
	log, rec := logtest.New(t)
	log.Debug("received", logging.KeyText, text)
	log.Info("sent", logging.KeyText, text, "chars", 15)
	log.Error("failed", logging.KeyText, text)
	lines := rec.Lines(t)
	if got := lines[0][logging.KeyText]; got != text {
		t.Errorf("debug text: got %v, want %v", got, text)
	}
	for _, l := range lines[1:] {
		if got := l[logging.KeyText]; got == text {
			t.Errorf("%v: text kept at %v", l["msg"], l["level"])
		}
	}
	if got, want := lines[1]["chars"], float64(15); got != want {
		t.Errorf("other attributes: got chars=%v, want %v", got, want)
	}
}

func TestNew(t *testing.T) {
	t.Parallel()
	tests := []struct {
		opts    logging.Options
		wantErr string
		check   func(out string) bool
	}{
		{logging.Options{Format: "json", Level: "debug"}, "", func(o string) bool { return json.Valid([]byte(strings.Split(o, "\n")[0])) }},
		{logging.Options{Format: "text", Level: "info"}, "", func(o string) bool { return strings.Contains(o, "level=INFO msg=x") }},
		{logging.Options{Format: "", Level: ""}, "", func(o string) bool { return strings.Contains(o, "msg=x") }},
		{logging.Options{Format: "xml"}, "LOG_FORMAT", nil},
		{logging.Options{Level: "verbose"}, "LOG_LEVEL", nil},
	}
	for _, tt := range tests {
		var buf bytes.Buffer
		log, err := logging.New(&buf, tt.opts)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("New(%+v): got %v, want an error naming %s", tt.opts, err, tt.wantErr)
			}
			continue
		}
		if err != nil {
			t.Fatalf("New(%+v): %v", tt.opts, err)
		}
		log.Debug("hidden at info")
		log.Info("x")
		if !tt.check(buf.String()) {
			t.Errorf("New(%+v) wrote %q", tt.opts, buf.String())
		}
		if tt.opts.Level == "info" && strings.Contains(buf.String(), "hidden") {
			t.Errorf("New(%+v) wrote a debug line", tt.opts)
		}
	}
}

func TestLevels(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		in   string
		want slog.Level
	}{{"debug", slog.LevelDebug}, {"INFO", slog.LevelInfo}, {"", slog.LevelInfo}, {"warn", slog.LevelWarn}, {"error", slog.LevelError}} {
		got, err := logging.ParseLevel(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("ParseLevel(%q): got %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
}

func BenchmarkLog(b *testing.B) {
	log, err := logging.New(discard{}, logging.Options{Format: "json", Level: "info"})
	if err != nil {
		b.Fatal(err)
	}
	log = logging.Component(log, "edge")
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		log.InfoContext(ctx, "frame", "type", "SEND_CHAT_MESSAGE", logging.UserID(7), logging.PID("c-1"))
	}
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
