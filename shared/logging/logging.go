// Package logging builds the log/slog loggers every process uses: JSON or text, a level,
// and a component attribute on every line (seed §11.2: component, user id, pid).
// Levels are the seed's: debug, info, warn, error; "success" is info with outcome=success.
package logging

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
)

// Options choose the format and the lowest level written.
type Options struct {
	// Format is "json" or "text".
	Format string
	// Level is "debug", "info", "warn" or "error".
	Level string
}

// ParseLevel turns a level name into a slog.Level.
func ParseLevel(s string) (slog.Level, error) {
	switch strings.ToLower(s) {
	case "debug":
		return slog.LevelDebug, nil
	case "", "info":
		return slog.LevelInfo, nil
	case "warn":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	}
	return 0, fmt.Errorf("expected debug, info, warn or error")
}

// New returns the root logger writing to w.
func New(w io.Writer, opts Options) (*slog.Logger, error) {
	level, err := ParseLevel(opts.Level)
	if err != nil {
		return nil, fmt.Errorf("LOG_LEVEL: %w", err)
	}
	ho := &slog.HandlerOptions{Level: level}
	switch opts.Format {
	case "", "text":
		return slog.New(slog.NewTextHandler(w, ho)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, ho)), nil
	}
	return nil, fmt.Errorf("LOG_FORMAT: expected json or text, got %q", opts.Format)
}

// Component returns log with the component attribute set.
func Component(log *slog.Logger, component string) *slog.Logger {
	return log.With("component", component)
}

// Success logs an operation that completed, at info level with outcome=success.
func Success(ctx context.Context, log *slog.Logger, msg string, args ...any) {
	log.InfoContext(ctx, msg, append([]any{"outcome", "success"}, args...)...)
}

// Discard is a logger that writes nothing, for tests.
func Discard() *slog.Logger { return slog.New(slog.DiscardHandler) }
