package telemetry_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"strings"
	"testing"

	_ "modernc.org/sqlite"

	"github.com/charla/charla/shared/buildinfo"
	"github.com/charla/charla/shared/telemetry"
	"github.com/charla/charla/shared/telemetry/telemetrytest"
)

// TestProcessSeriesFromTheStart checks what a scrape shows before any traffic: the build
// info.
func TestProcessSeriesFromTheStart(t *testing.T) {
	tel := newLocal(t)
	m := telemetrytest.Scrape(t, tel.MetricsHandler())
	bi := buildinfo.Read()
	if got := m.Sum("charla_build_info", `version="`+bi.Version+`"`, `revision="`+bi.Revision+`"`, `go_version="`+bi.GoVersion+`"`); got != 1 {
		t.Errorf("charla_build_info with this build's labels = %v, want 1\n%s", got, m.Grep("charla_build_info"))
	}
}

func TestRegisterDB(t *testing.T) {
	tel := newLocal(t)
	db, err := sql.Open("sqlite", filepath.Join(t.TempDir(), "x.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	db.SetMaxOpenConns(7)
	if err := tel.RegisterDB("chatsvc", db); err != nil {
		t.Fatal(err)
	}
	if err := tel.RegisterDB("chatsvc", db); err == nil || !strings.Contains(err.Error(), "chatsvc") {
		t.Errorf("second RegisterDB(chatsvc) = %v, want an error naming the database", err)
	}
	if err := db.Ping(); err != nil {
		t.Fatal(err)
	}
	m := telemetrytest.Scrape(t, tel.MetricsHandler())
	if got := m.Sum("go_sql_max_open_connections", `db_name="chatsvc"`); got != 7 {
		t.Errorf("go_sql_max_open_connections{db_name=chatsvc} = %v, want 7", got)
	}
	if got := m.Sum("go_sql_open_connections", `db_name="chatsvc"`); got != 1 {
		t.Errorf("go_sql_open_connections{db_name=chatsvc} = %v, want 1 after a ping", got)
	}
}

// newLocal is telemetry of the test's own, not installed as the globals, with tracing off.
func newLocal(t *testing.T) *telemetry.Telemetry {
	t.Helper()
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "")
	t.Setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "")
	tel, err := telemetry.Setup(context.Background(), "test", telemetry.WithoutGlobals())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tel.Shutdown(context.Background()) })
	return tel
}
