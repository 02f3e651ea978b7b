package dbtest

import (
	"io/fs"
	"path"
	"strings"
	"testing"
	"testing/fstest"
)

// MigrationsBefore returns the migrations of a service's embedded tree (the layout of
// sqldb.MigrateEmbedded: migrations/<dialect>/NNNNN_name.sql) that come before the first
// file, in each dialect's folder, whose name ends with suffix; the tree sqldb.Migrate takes.
// A test applies them, stores rows as that version did, then runs the service's Migrate to
// check what the later migrations make of them. It fails the test when a dialect's folder
// has no such file.
func MigrationsBefore(tb testing.TB, embedded fs.FS, suffix string) fstest.MapFS {
	tb.Helper()
	dialects, err := fs.ReadDir(embedded, "migrations")
	if err != nil {
		tb.Fatalf("dbtest: migrations: %v", err)
	}
	out := fstest.MapFS{}
	for _, d := range dialects {
		dir := path.Join("migrations", d.Name())
		files, err := fs.ReadDir(embedded, dir) // sorted by name: by version
		if err != nil {
			tb.Fatalf("dbtest: migrations: %v", err)
		}
		found := false
		for _, f := range files {
			if strings.HasSuffix(f.Name(), suffix) {
				found = true
				break
			}
			data, err := fs.ReadFile(embedded, path.Join(dir, f.Name()))
			if err != nil {
				tb.Fatalf("dbtest: migrations: %v", err)
			}
			out[path.Join(d.Name(), f.Name())] = &fstest.MapFile{Data: data}
		}
		if !found {
			tb.Fatalf("dbtest: no migration in %s ends with %q", dir, suffix)
		}
	}
	return out
}
