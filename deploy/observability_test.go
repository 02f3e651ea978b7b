package deploy_test

import (
	"encoding/json"
	"log/slog"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
)

// exported are the metric families Charla processes serve (shared/telemetry's doc lists
// them), plus Prometheus' own up. A rule or panel naming anything else has a typo.
var exported = []string{
	"up",
	"charla_build_info",
	"charla_edge_connections_active", "charla_edge_connections_parked", "charla_edge_frames_total", "charla_edge_frame_results_total",
	"charla_edge_errors_total", "charla_edge_send_dropped_total",
	"charla_event_delivery_lag_seconds_bucket", "charla_event_delivery_lag_seconds_count", "charla_event_delivery_lag_seconds_sum",
	"charla_bus_nats_connected", "charla_bus_nats_disconnects_total", "charla_bus_nats_reconnects_total",
	"rpc_server_call_duration_seconds_bucket", "rpc_server_call_duration_seconds_count", "rpc_server_call_duration_seconds_sum",
	"rpc_client_call_duration_seconds_bucket", "rpc_client_call_duration_seconds_count", "rpc_client_call_duration_seconds_sum",
	"db_client_operation_duration_seconds_bucket", "db_client_operation_duration_seconds_count", "db_client_operation_duration_seconds_sum",
	"go_sql_open_connections", "go_sql_in_use_connections", "go_sql_idle_connections", "go_sql_max_open_connections",
	"go_sql_wait_count_total", "go_sql_wait_duration_seconds_total",
	"go_goroutines", "go_memstats_heap_inuse_bytes",
}

// promQL parses as Prometheus does, with its default options.
var promQL = parser.NewParser(parser.Options{})

// checkExpr parses a PromQL expression and checks every metric it selects is exported.
func checkExpr(t *testing.T, where, expr string) {
	t.Helper()
	e, err := promQL.ParseExpr(expr)
	if err != nil {
		t.Errorf("%s: %v\n%s", where, err, expr)
		return
	}
	for _, sel := range parser.ExtractSelectors(e) {
		for _, m := range sel {
			if m.Name == "__name__" && !slices.Contains(exported, m.Value) {
				t.Errorf("%s: metric %q is not one Charla exports", where, m.Value)
			}
		}
	}
}

// TestAlertRules parses the rules as `promtool check rules` does (rulefmt validates the
// expressions and templates) and checks what every alert needs to be acted on.
func TestAlertRules(t *testing.T) {
	t.Parallel()
	groups, errs := rulefmt.ParseFile("observability/alerts.yaml", false, model.UTF8Validation, promQL, slog.New(slog.DiscardHandler))
	for _, err := range errs {
		t.Error(err)
	}
	if groups == nil {
		t.Fatal("no rule groups")
	}
	alerts := 0
	for _, g := range groups.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" {
				continue
			}
			alerts++
			checkExpr(t, r.Alert, r.Expr)
			if sev := r.Labels["severity"]; !slices.Contains([]string{"critical", "warning", "info"}, sev) {
				t.Errorf("%s: severity %q, want critical, warning or info", r.Alert, sev)
			}
			if r.Annotations["summary"] == "" || r.Annotations["description"] == "" {
				t.Errorf("%s: wants a summary and a description", r.Alert)
			}
		}
	}
	if alerts < 5 {
		t.Errorf("%d alerts, want the availability, edge, RPC, database and bus ones", alerts)
	}
}

// TestDashboard decodes the Grafana dashboard and parses every panel's query with the
// dashboard's variables substituted.
func TestDashboard(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile("observability/grafana-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	type target struct {
		Expr string `json:"expr"`
	}
	type panel struct {
		ID      int      `json:"id"`
		Type    string   `json:"type"`
		Title   string   `json:"title"`
		Targets []target `json:"targets"`
	}
	var d struct {
		UID    string  `json:"uid"`
		Title  string  `json:"title"`
		Panels []panel `json:"panels"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("dashboard JSON: %v", err)
	}
	if d.UID == "" || d.Title == "" {
		t.Error("dashboard wants a uid and a title")
	}
	vars := strings.NewReplacer("$__rate_interval", "5m", "$job", ".*")
	ids := map[int]bool{}
	queries := 0
	for _, p := range d.Panels {
		if ids[p.ID] {
			t.Errorf("panel id %d used twice", p.ID)
		}
		ids[p.ID] = true
		if p.Type != "row" && len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			queries++
			checkExpr(t, "panel "+p.Title, vars.Replace(tg.Expr))
		}
	}
	if queries == 0 {
		t.Error("no queries in the dashboard")
	}
}
