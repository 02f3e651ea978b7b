package telemetry

import (
	"database/sql"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/charla/charla/shared/buildinfo"
)

// buildInfoCollector is charla_build_info{version,revision,go_version} 1: the usual
// "info" gauge, joined onto other series in queries and dashboards to show which build runs.
func buildInfoCollector() prometheus.Collector {
	bi := buildinfo.Read()
	return prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "charla_build_info",
		Help: "Always 1; the labels tell which build of Charla this process runs.",
		ConstLabels: prometheus.Labels{
			"version": bi.Version, "revision": bi.Revision, "go_version": bi.GoVersion,
		},
	}, func() float64 { return 1 })
}

// RegisterDB exposes the connection pool statistics of db (sql.DBStats) as the
// go_sql_* series of the Prometheus client (open, in use and idle connections, waits and
// their total time, connections closed by each limit), labelled db_name=name. Each
// service's database is registered under the service's name; a second registration
// under the same name is an error.
func (t *Telemetry) RegisterDB(name string, db *sql.DB) error {
	if err := t.registry.Register(collectors.NewDBStatsCollector(db, name)); err != nil {
		return fmt.Errorf("register pool metrics of database %s: %w", name, err)
	}
	return nil
}
