package sqldb

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strings"

	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/database"
)

// Migrate applies the pending migrations of one service with github.com/pressly/goose.
// migrations holds one folder per dialect ("sqlite", "mysql") of numbered goose SQL files,
// and optionally a folder "common" of files whose SQL both dialects accept (seed data),
// so that such a file is written once; its version numbers must not repeat a dialect's.
// Each service keeps its applied versions in its own table (goose_<service>), so services
// that share one database never see each other's history.
func Migrate(ctx context.Context, db *DB, service string, migrations fs.FS) error {
	sub, err := dialectMigrations(migrations, db.Dialect)
	if err != nil {
		return fmt.Errorf("migrations of %s for %s: %w", service, db.Dialect, err)
	}
	dialect := database.DialectSQLite3
	if db.Dialect == MySQL {
		dialect = database.DialectMySQL
	}
	store, err := database.NewStore(dialect, "goose_"+service)
	if err != nil {
		return fmt.Errorf("migration store of %s: %w", service, err)
	}
	provider, err := goose.NewProvider("", db.DB, sub, goose.WithStore(store))
	if err != nil {
		return fmt.Errorf("load migrations of %s: %w", service, err)
	}
	if _, err := provider.Up(ctx); err != nil {
		return fmt.Errorf("migrate %s: %w", service, err)
	}
	return nil
}

// MigrateEmbedded is Migrate for the layout every service embeds (//go:embed migrations):
// the folders of Migrate under a top folder "migrations".
func MigrateEmbedded(ctx context.Context, db *DB, service string, embedded fs.FS) error {
	sub, err := fs.Sub(embedded, "migrations")
	if err != nil {
		return fmt.Errorf("migrations of %s: %w", service, err)
	}
	return Migrate(ctx, db, service, sub)
}

// dialectMigrations is the dialect's folder of migrations overlaid with "common".
func dialectMigrations(migrations fs.FS, dialect Dialect) (fs.FS, error) {
	own, err := fs.Sub(migrations, string(dialect))
	if err != nil {
		return nil, err
	}
	if _, err := fs.Stat(migrations, "common"); err != nil {
		return own, nil
	}
	common, err := fs.Sub(migrations, "common")
	if err != nil {
		return nil, err
	}
	return overlayFS{own, common}, nil
}

// overlayFS is the union of two flat folders; a name in both is an error at ReadDir.
type overlayFS [2]fs.FS

func (o overlayFS) Open(name string) (fs.File, error) {
	f, err := o[0].Open(name)
	if errors.Is(err, fs.ErrNotExist) {
		return o[1].Open(name)
	}
	return f, err
}

func (o overlayFS) ReadDir(name string) ([]fs.DirEntry, error) {
	var all []fs.DirEntry
	seen := map[string]bool{}
	for _, f := range o {
		entries, err := fs.ReadDir(f, name)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		for _, e := range entries {
			if seen[e.Name()] {
				return nil, fmt.Errorf("migration %s is both in the dialect's folder and in common", e.Name())
			}
			seen[e.Name()] = true
			all = append(all, e)
		}
	}
	slices.SortFunc(all, func(a, b fs.DirEntry) int { return strings.Compare(a.Name(), b.Name()) })
	return all, nil
}
