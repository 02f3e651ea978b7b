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

// BenchmarkAdHocQueryMySQL times a statement with an argument that was not prepared
// beforehand, as the batch statements are (their IN lists change length). With the
// driver's InterpolateParams it is one round trip (a query with the argument escaped in)
// instead of a prepare, an execute and a close. Skipped without MYSQL_TEST_DSN.
func BenchmarkAdHocQueryMySQL(b *testing.B) {
	db := dbtest.OpenURL(b, dbtest.NewURL(b, sqldb.MySQL))
	ctx := context.Background()
	n := 0
	for b.Loop() {
		var got int
		if err := db.QueryRowContext(ctx, "SELECT ? + 1", n).Scan(&got); err != nil || got != n+1 {
			b.Fatalf("SELECT %d + 1 = %d, %v", n, got, err)
		}
		n++
	}
}
