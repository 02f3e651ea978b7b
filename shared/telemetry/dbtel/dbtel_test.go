package dbtel_test

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
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

func TestSpanName(t *testing.T) {
	t.Parallel()
	tests := []struct{ query, want, op, table string }{
		{"SELECT id FROM ChatMessage WHERE id = ?", "SELECT ChatMessage", "SELECT", "ChatMessage"},
		{"select  Id\n\tFROM `User` u JOIN Session s ON s.UserId = u.Id WHERE email = 'a@b'", "SELECT User", "SELECT", "User"},
		{"SELECT COUNT(*) FROM \"Notification\" WHERE UserId = ?", "SELECT Notification", "SELECT", "Notification"},
		{"SELECT Other FROM (SELECT Id, UserId2 AS Other FROM Contact WHERE UserId1 = ?) c", "SELECT", "SELECT", ""},
		{"SELECT (SELECT MAX(Id) FROM ChatMessage) AS m FROM Contact", "SELECT Contact", "SELECT", "Contact"},
		{"SELECT 1", "SELECT", "SELECT", ""},
		{"INSERT INTO ChatMessage (ChatId, Body) VALUES (?, ?), (?, ?)", "INSERT ChatMessage", "INSERT", "ChatMessage"},
		{"INSERT IGNORE INTO ChatNotified (ChatId) VALUES (?)", "INSERT ChatNotified", "INSERT", "ChatNotified"},
		{"INSERT OR IGNORE INTO Edge (Id) VALUES (?) ON CONFLICT DO NOTHING", "INSERT Edge", "INSERT", "Edge"},
		{"REPLACE INTO UserStatus (UserId) VALUES (?)", "REPLACE UserStatus", "REPLACE", "UserStatus"},
		{"UPDATE UserStatus SET Online = ? WHERE UserId = ?", "UPDATE UserStatus", "UPDATE", "UserStatus"},
		{"UPDATE LOW_PRIORITY IGNORE `Session` SET x = 1", "UPDATE Session", "UPDATE", "Session"},
		{"UPDATE OR REPLACE Edge SET LeaseUntil = ?", "UPDATE Edge", "UPDATE", "Edge"},
		{"DELETE FROM PresenceConnection WHERE EdgeId = ?", "DELETE PresenceConnection", "DELETE", "PresenceConnection"},
		{"WITH old AS (SELECT Id FROM Notification ORDER BY Id LIMIT 10) DELETE FROM Notification WHERE Id IN (SELECT Id FROM old)", "DELETE Notification", "DELETE", "Notification"},
		{"-- a comment\nSAVEPOINT sp1", "SAVEPOINT", "SAVEPOINT", ""},
		{"BEGIN", "BEGIN", "BEGIN", ""},
		{"SELECT * FROM charla.Contact", "SELECT charla.Contact", "SELECT", "charla.Contact"},
		{"(SELECT 1)", "SQL", "", ""},
		{"", "SQL", "", ""},
	}
	for _, tt := range tests {
		if got := dbtel.SpanName(tt.query); got != tt.want {
			t.Errorf("SpanName(%q) = %q, want %q", tt.query, got, tt.want)
		}
		if op, table := dbtel.Summarize(tt.query); op != tt.op || table != tt.table {
			t.Errorf("Summarize(%q) = %q, %q, want %q, %q", tt.query, op, table, tt.op, tt.table)
		}
	}
}

// TestSpanNamesAreFew: statements that differ only in their values, their IN lists or
// their columns share one span name.
func TestSpanNamesAreFew(t *testing.T) {
	t.Parallel()
	names := map[string]bool{}
	for n := 1; n <= 50; n++ {
		names[dbtel.SpanName("SELECT UserId FROM PresenceConnection WHERE UserId IN ("+strings.Repeat("?, ", n)+"?)")] = true
		names[dbtel.SpanName(fmt.Sprintf("SELECT Col%d, Other FROM PresenceConnection WHERE Id > %d", n, n))] = true
	}
	if len(names) != 1 {
		t.Errorf("100 variants of one query got %d span names: %v", len(names), names)
	}
}

func TestSpanNameTruncated(t *testing.T) {
	t.Parallel()
	q := "SELECT x FROM " + strings.Repeat("ñ", 200)
	got := dbtel.SpanName(q)
	if len(got) > dbtel.MaxSpanName {
		t.Errorf("len(SpanName) = %d, want at most %d", len(got), dbtel.MaxSpanName)
	}
	if !strings.HasPrefix(got, "SELECT ñ") || !strings.HasSuffix(got, "...") {
		t.Errorf("SpanName = %q, want the start and ...", got)
	}
	if !utf8.ValidString(got) {
		t.Errorf("SpanName cut a character: %q", got)
	}
}

// openBeforeSetupRan is set by TestOpenBeforeSetup's first run.
var openBeforeSetupRan atomic.Bool

// TestOpenBeforeSetup opens the database before telemetry is set up, as the one-process
// binary may: its statements still reach the tracer provider installed later, because
// otelsql holds the globals' delegates. It must be the first test in this binary to
// install providers, which is why it lives here and not beside the other telemetry tests.
func TestOpenBeforeSetup(t *testing.T) {
	if openBeforeSetupRan.Swap(true) {
		// -count above 1: the globals delegate to the first run's (shut down) providers for
		// good, so a second run cannot be the first install.
		t.Skip("runs once per test binary: it must be the first to install providers")
	}
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
	if want := []string{"SELECT", "parent"}; strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("spans: got %q, want %q", got, want)
	}
}
