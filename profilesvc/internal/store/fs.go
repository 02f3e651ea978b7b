package store

import "io/fs"

// fsSub returns the migrations folder as the root sqldb.Migrate expects.
func fsSub() (fs.FS, error) {
	return fs.Sub(migrations, "migrations")
}
