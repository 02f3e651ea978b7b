package sqldb_test

import (
	"context"
	"database/sql"
	"testing"

	"github.com/charla/charla/shared/sqldb"
	"github.com/charla/charla/shared/sqldb/dbtest"
)

// BenchmarkInTxMySQL times the smallest transaction (BEGIN, one SELECT, COMMIT) on MySQL:
// mostly round trips. With the session at READ COMMITTED from the connector, InTx sends
// no SET TRANSACTION ISOLATION LEVEL before each START TRANSACTION (three round trips
// instead of four; about 250 → 180 µs on the benchmark machine's MariaDB). Skipped without
// MYSQL_TEST_DSN.
func BenchmarkInTxMySQL(b *testing.B) {
	db := dbtest.OpenURL(b, dbtest.NewURL(b, sqldb.MySQL))
	ctx := context.Background()
	for b.Loop() {
		err := db.InTx(ctx, func(tx *sql.Tx) error {
			var n int
			return tx.QueryRowContext(ctx, "SELECT 1").Scan(&n)
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}
