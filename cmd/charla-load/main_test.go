package main

import (
	"slices"
	"strings"
	"testing"
	"time"
)

func TestParseFlagsRejectsBadInput(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{"-targets", "postgres"},
		{"-modes", "idle,burst"},
		{"-levels", "5000,2000"},
		{"-levels", "10,x"},
		{"-levels", "70000"},
		{"-pairs", "0"},
		{"-phase", "10m"},
		{"-targets", "attach", "-edge", "ws://127.0.0.1:8080/ws"},
		{"-targets", "attach", "-edge", "ws://192.168.1.5:8080/ws", "-rpc", "http://127.0.0.1:8090", "-server-pid", "1"},
		{"-targets", "attach", "-edge", "ws://127.0.0.1:8080/ws", "-rpc", "http://10.1.1.1:8090", "-server-pid", "1"},
		{"stray"},
	} {
		if _, err := parseFlags(args); err == nil {
			t.Errorf("parseFlags(%q): no error", args)
		}
	}
}

func TestQuickAndCommand(t *testing.T) {
	t.Parallel()
	c, err := parseFlags([]string{"-targets", "sqlite,apart", "-quick", "-pairs", "50"})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(c.levels, []int{500, 1000}) || c.pairs != 50 || c.phase != 3*time.Second || c.soak != 0 {
		t.Errorf("quick config: levels %v pairs %d phase %v soak %v; want 500,1000, the given 50, 3s, none", c.levels, c.pairs, c.phase, c.soak)
	}
	cmd := c.command("apart")
	for _, want := range []string{"-targets apart", "-levels 500,1000", "-pairs 50 -rates 200,1000 -phase 3s", "-apart-soak 0s"} {
		if !strings.Contains(cmd, want) {
			t.Errorf("command %q lacks %q", cmd, want)
		}
	}
	full, err := parseFlags([]string{"-targets", "mysql"})
	if err != nil {
		t.Fatal(err)
	}
	if got := full.ratesFor("mysql"); !slices.Equal(got, defaultRates["mysql"]) {
		t.Errorf("mysql rates %v, want the default %v", got, defaultRates["mysql"])
	}
	if cmd := full.command("mysql"); !strings.Contains(cmd, "-rates 500,1000,2500,5000") || strings.Contains(cmd, "soak") {
		t.Errorf("command %q: want the mysql rates and no soak", cmd)
	}
}

func TestSoakFlags(t *testing.T) {
	t.Parallel()
	c, err := parseFlags([]string{"-soak", "30m"})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(c.targets, []string{"apart"}) || c.soakRate != 1000 || c.timeout != 45*time.Minute || c.flatAfter != 3*time.Minute || c.sampleEvery != 30*time.Second {
		t.Errorf("soak defaults: targets %v rate %d timeout %v flat-after %v sample-every %v; want apart, 1000, 45m, 3m, 30s", c.targets, c.soakRate, c.timeout, c.flatAfter, c.sampleEvery)
	}
	if cmd := c.soakCommand("apart"); !strings.Contains(cmd, "-soak 30m0s -targets apart -pairs 1000 -soak-rate 1000 -churn 2 -offline 2s -sample-every 30s -flat-after 3m0s") {
		t.Errorf("soak command %q", cmd)
	}
	// A short soak on two targets: the warm-up shrinks to a third, the timeout covers both.
	short, err := parseFlags([]string{"-soak", "3m", "-targets", "sqlite,mysql", "-soak-rate", "500"})
	if err != nil {
		t.Fatal(err)
	}
	if short.flatAfter != time.Minute || short.timeout != 36*time.Minute || short.soakRate != 500 || !slices.Equal(short.targets, []string{"sqlite", "mysql"}) {
		t.Errorf("short soak: flat-after %v timeout %v rate %d targets %v; want 1m, 36m, 500, sqlite,mysql", short.flatAfter, short.timeout, short.soakRate, short.targets)
	}
	for _, args := range [][]string{
		{"-soak", "2h"},
		{"-soak", "30m", "-timeout", "20m"},
		{"-soak", "30m", "-targets", "relay"},
		{"-soak", "30m", "-churn", "-1"},
		{"-soak", "30m", "-offline", "5m"},
		{"-soak", "30m", "-sample-every", "100ms"},
		{"-soak", "30m", "-flat-after", "30m"},
		{"-soak", "100m", "-soak-rate", "5000"}, // 30 million messages
		{"-soak", "-1m"},
	} {
		if _, err := parseFlags(args); err == nil {
			t.Errorf("parseFlags(%q): no error", args)
		}
	}
}
