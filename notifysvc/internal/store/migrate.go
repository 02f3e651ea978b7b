package store

import (
	"context"
	"embed"

	"github.com/charla/charla/shared/sqldb"
)

// migrations holds the goose migrations, one folder per dialect ("sqlite", "mysql").
//
//go:embed migrations
var migrations embed.FS

// ServiceName names the service's goose version table (goose_notify).
const ServiceName = "notify"

// Migrate applies the pending notification migrations to db (shared/sqldb.MigrateEmbedded). The
// service's New calls it first, before New of this package.
func Migrate(ctx context.Context, db *sqldb.DB) error {
	return sqldb.MigrateEmbedded(ctx, db, ServiceName, migrations)
}
