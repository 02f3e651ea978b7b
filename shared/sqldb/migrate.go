package sqldb

import (
	"context"
	"fmt"
	"io/fs"

	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/database"
)

// Migrate applies the pending migrations of one service with github.com/pressly/goose.
// migrations holds one folder per dialect ("sqlite", "mysql") of numbered goose SQL files.
// Each service keeps its applied versions in its own table (goose_<service>), so services
// that share one database never see each other's history.
func Migrate(ctx context.Context, db *DB, service string, migrations fs.FS) error {
	sub, err := fs.Sub(migrations, string(db.Dialect))
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
