package dbtel_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"

	_ "modernc.org/sqlite"

	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/charla/charla/shared/sqldb"
	"github.com/charla/charla/shared/telemetry/telemetrytest"
)

// BenchmarkQuery is one indexed SELECT on SQLite: through database/sql alone (raw), through
// sqldb.Open's instrumented driver outside any span (what every statement pays with tracing
// off), and inside a recording span (a span per statement, exported to a discarding exporter).
func BenchmarkQuery(b *testing.B) {
	setup := func(b *testing.B, db *sql.DB) {
		b.Helper()
		ctx := context.Background()
		for _, q := range []string{"CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)", "INSERT INTO t (v) VALUES ('x')"} {
			if _, err := db.ExecContext(ctx, q); err != nil {
				b.Fatal(err)
			}
		}
	}
	run := func(b *testing.B, ctx context.Context, db *sql.DB) {
		b.ReportAllocs()
		var v string
		for b.Loop() {
			if err := db.QueryRowContext(ctx, "SELECT v FROM t WHERE id = ?", 1).Scan(&v); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.Run("raw", func(b *testing.B) {
		// The DSN sqldb.Open uses, without the instrumentation.
		db, err := sql.Open("sqlite", "file:"+filepath.Join(b.TempDir(), "raw.db")+"?_txlock=immediate"+
			"&_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_pragma=foreign_keys(ON)")
		if err != nil {
			b.Fatal(err)
		}
		defer db.Close()
		setup(b, db)
		run(b, context.Background(), db)
	})
	b.Run("instrumented/tracing=off", func(b *testing.B) {
		db, err := sqldb.Open(context.Background(), "sqlite://"+filepath.Join(b.TempDir(), "off.db"))
		if err != nil {
			b.Fatal(err)
		}
		defer db.Close()
		setup(b, db.DB)
		run(b, context.Background(), db.DB)
	})
	b.Run("instrumented/tracing=on", func(b *testing.B) {
		tel := telemetrytest.Setup(b, tracetest.NewNoopExporter())
		db, err := sqldb.Open(context.Background(), "sqlite://"+filepath.Join(b.TempDir(), "on.db"))
		if err != nil {
			b.Fatal(err)
		}
		defer db.Close()
		setup(b, db.DB)
		ctx, span := tel.TracerProvider().Tracer("bench").Start(context.Background(), "parent")
		defer span.End()
		run(b, ctx, db.DB)
	})
}
