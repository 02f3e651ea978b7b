package sqldb_test

import (
	"context"
	"database/sql"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/charla/charla/shared/sqldb"
	"github.com/charla/charla/shared/sqldb/dbtest"
)

func TestParseURL(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		url     string
		dialect sqldb.Dialect
		dsn     string
		errPart string
	}{
		{"", sqldb.SQLite, "./data/charla.db", ""},
		{"sqlite:///tmp/x.db", sqldb.SQLite, "/tmp/x.db", ""},
		{"mysql://root@tcp(127.0.0.1:3306)/test", sqldb.MySQL, "root@tcp(127.0.0.1:3306)/test", ""},
		{"sqlite://", "", "", "file path"},
		{"postgres://u:secret@h/db", "", "", "want sqlite://"},
		{"mysql://not a dsn", "", "", "DSN"},
	} {
		d, dsn, err := sqldb.ParseURL(tc.url)
		if tc.errPart != "" {
			if err == nil || !strings.Contains(err.Error(), tc.errPart) {
				t.Errorf("ParseURL(%q) error = %v, want one mentioning %q", tc.url, err, tc.errPart)
			}
			if err != nil && strings.Contains(err.Error(), "secret") {
				t.Errorf("ParseURL(%q) error leaks the password: %v", tc.url, err)
			}
			continue
		}
		if err != nil || d != tc.dialect || dsn != tc.dsn {
			t.Errorf("ParseURL(%q) = %q, %q, %v; want %q, %q", tc.url, d, dsn, err, tc.dialect, tc.dsn)
		}
	}
}

// migrations is a two-step schema in both dialects.
var migrations = fstest.MapFS{
	"sqlite/00001_init.sql": {Data: []byte("-- +goose Up\nCREATE TABLE Thing (Id INTEGER PRIMARY KEY AUTOINCREMENT, Name TEXT NOT NULL UNIQUE);\n")},
	"sqlite/00002_more.sql": {Data: []byte("-- +goose Up\nALTER TABLE Thing ADD COLUMN Note TEXT NOT NULL DEFAULT '';\n")},
	"mysql/00001_init.sql":  {Data: []byte("-- +goose Up\nCREATE TABLE Thing (Id BIGINT AUTO_INCREMENT PRIMARY KEY, Name VARCHAR(64) NOT NULL UNIQUE) ENGINE=InnoDB;\n")},
	"mysql/00002_more.sql":  {Data: []byte("-- +goose Up\nALTER TABLE Thing ADD COLUMN Note VARCHAR(64) NOT NULL DEFAULT '';\n")},
	// Seed data both dialects accept is written once.
	"common/00003_seed.sql": {Data: []byte("-- +goose Up\nINSERT INTO Thing (Name) VALUES ('seeded');\n")},
}

func TestMigrateAndDuplicates(t *testing.T) {
	t.Parallel()
	dbtest.ForEachBackend(t, func(t *testing.T, url string) {
		ctx := context.Background()
		db, err := sqldb.Open(ctx, url)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		for range 2 { // a second run applies nothing and fails nothing
			if err := sqldb.Migrate(ctx, db, "things", migrations); err != nil {
				t.Fatal(err)
			}
		}
		// Another service's migrations in the same database keep their own history.
		other := fstest.MapFS{
			"sqlite/00001_init.sql": {Data: []byte("-- +goose Up\nCREATE TABLE Other (Id INTEGER PRIMARY KEY);\n")},
			"mysql/00001_init.sql":  {Data: []byte("-- +goose Up\nCREATE TABLE Other (Id BIGINT PRIMARY KEY);\n")},
		}
		if err := sqldb.Migrate(ctx, db, "others", other); err != nil {
			t.Fatal(err)
		}
		var seeded int
		if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM Thing WHERE Name = 'seeded'").Scan(&seeded); err != nil || seeded != 1 {
			t.Errorf("rows from the common migration = %d, %v; want 1", seeded, err)
		}
		err = db.InTx(ctx, func(tx *sql.Tx) error {
			_, err := tx.ExecContext(ctx, "INSERT INTO Thing (Name, Note) VALUES (?, ?)", "a", "😀")
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		_, err = db.ExecContext(ctx, "INSERT INTO Thing (Name) VALUES (?)", "a")
		if !sqldb.IsDuplicate(err) {
			t.Errorf("second insert of the same name: IsDuplicate(%v) = false, want true", err)
		}
		var note string
		if err := db.QueryRowContext(ctx, "SELECT Note FROM Thing WHERE Name = ?", "a").Scan(&note); err != nil || note != "😀" {
			t.Errorf("4-byte emoji round trip = %q, %v; want 😀", note, err)
		}
	})
}

func TestPlaceholders(t *testing.T) {
	t.Parallel()
	if got := sqldb.Placeholders(3); got != "?, ?, ?" {
		t.Errorf("Placeholders(3) = %q", got)
	}
	if got := sqldb.Placeholders(0); got != "" {
		t.Errorf("Placeholders(0) = %q", got)
	}
}
