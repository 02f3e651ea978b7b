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
