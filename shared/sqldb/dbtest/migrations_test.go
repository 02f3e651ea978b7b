package dbtest

import (
	"slices"
	"testing"
	"testing/fstest"
)

// TestMigrationsBefore: each dialect's folder is cut at its own file with the suffix,
// whatever that file's version number, and the paths are those sqldb.Migrate reads.
func TestMigrationsBefore(t *testing.T) {
	t.Parallel()
	tree := fstest.MapFS{
		"migrations/sqlite/00001_init.sql":    {Data: []byte("a")},
		"migrations/sqlite/00002_partial.sql": {Data: []byte("b")},
		"migrations/sqlite/00003_counts.sql":  {Data: []byte("c")},
		"migrations/sqlite/00004_later.sql":   {Data: []byte("d")},
		"migrations/mysql/00001_init.sql":     {Data: []byte("e")},
		"migrations/mysql/00002_counts.sql":   {Data: []byte("f")},
	}
	got := MigrationsBefore(t, tree, "_counts.sql")
	var names []string
	for name := range got {
		names = append(names, name)
	}
	slices.Sort(names)
	want := []string{"mysql/00001_init.sql", "sqlite/00001_init.sql", "sqlite/00002_partial.sql"}
	if !slices.Equal(names, want) {
		t.Fatalf("MigrationsBefore: got %v, want %v", names, want)
	}
	if string(got["sqlite/00002_partial.sql"].Data) != "b" {
		t.Fatalf("sqlite/00002_partial.sql holds %q, want the original's", got["sqlite/00002_partial.sql"].Data)
	}
}
