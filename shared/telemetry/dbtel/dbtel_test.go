package dbtel_test

import (
	"context"
	"strings"
	"testing"
	"unicode/utf8"

	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/charla/charla/shared/sqldb"
	"github.com/charla/charla/shared/sqldb/dbtest"
	"github.com/charla/charla/shared/telemetry/dbtel"
	"github.com/charla/charla/shared/telemetry/telemetrytest"
)

func TestNormalize(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"SELECT id FROM ChatMessage WHERE id = ?", "SELECT id FROM ChatMessage WHERE id = ?"},
		{"SELECT  id\n\tFROM `User`\n WHERE email = 'ana@example.com' AND age > 30", "SELECT id FROM `User` WHERE email = ? AND age > ?"},
		{`UPDATE "User" SET name = 'O''Brien', t2 = 1.5e-3 WHERE id IN (1, 2, 0x1F)`, `UPDATE "User" SET name = ?, t2 = ? WHERE id IN (?, ?, ?)`},
		{`INSERT INTO t (v) VALUES ('it\'s')`, `INSERT INTO t (v) VALUES (?)`},
		{"SELECT 1 -- password 'x'\nFROM dual /* secret 42 */ LIMIT 50", "SELECT ? FROM dual LIMIT ?"},
		{"SELECT col1, t1.col2 FROM t1", "SELECT col1, t1.col2 FROM t1"},
		{"SELECT * FROM t WHERE v = 'unterminated", "SELECT * FROM t WHERE v = ?"},
		{"  ", ""},
	}
	for _, tt := range tests {
		if got := dbtel.Normalize(tt.in); got != tt.want {
			t.Errorf("Normalize(%q):\n got %q\nwant %q", tt.in, got, tt.want)
		}
	}
}

func TestSpanNameTruncated(t *testing.T) {
	t.Parallel()
	q := "SELECT " + strings.Repeat("ñame, ", 60) + "x FROM t"
	got := dbtel.SpanName(q)
	if len(got) > dbtel.MaxSpanName {
		t.Errorf("len(SpanName) = %d, want at most %d", len(got), dbtel.MaxSpanName)
	}
	if !strings.HasPrefix(got, "SELECT ñame, ") || !strings.HasSuffix(got, "...") {
		t.Errorf("SpanName = %q, want the statement's start and ...", got)
	}
	if !utf8.ValidString(got) {
		t.Errorf("SpanName cut a character: %q", got)
	}
}

// TestOpenBeforeSetup opens the database before telemetry is set up, as the one-process
// binary may: its statements still reach the tracer provider installed later, because
// otelsql holds the globals' delegates. It must be the first test in this binary to
// install providers, which is why it lives here and not beside the other telemetry tests.
func TestOpenBeforeSetup(t *testing.T) {
	db := dbtest.Open(t, sqldb.SQLite)
	exp := tracetest.NewInMemoryExporter()
	tel := telemetrytest.Setup(t, exp)
	ctx, span := tel.TracerProvider().Tracer("test").Start(context.Background(), "parent")
	var n int
	if err := db.QueryRowContext(ctx, "SELECT 1 + ?", 41).Scan(&n); err != nil {
		t.Fatal(err)
	}
	span.End()
	// Outside any span: no span (migrations, background sweeps).
	if err := db.QueryRowContext(context.Background(), "SELECT 2").Scan(&n); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, s := range exp.GetSpans() {
		got = append(got, s.Name)
	}
	if want := []string{"SELECT ? + ?", "parent"}; strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("spans: got %q, want %q", got, want)
	}
}
