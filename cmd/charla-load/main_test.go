package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/charla/charla/cmd/internal/load/bench"
	"github.com/charla/charla/cmd/internal/load/soak"
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
	if !slices.Equal(c.targets, []string{"apart"}) || c.soakRate != 1000 || c.timeout != 50*time.Minute || c.flatAfter != 3*time.Minute || c.sampleEvery != 30*time.Second || c.grace != 10*time.Minute {
		t.Errorf("soak defaults: targets %v rate %d timeout %v flat-after %v sample-every %v grace %v; want apart, 1000, 50m, 3m, 30s, 10m", c.targets, c.soakRate, c.timeout, c.flatAfter, c.sampleEvery, c.grace)
	}
	if cmd := c.soakCommand("apart"); !strings.Contains(cmd, "-soak 30m0s -targets apart -pairs 1000 -soak-rate 1000 -churn 2 -offline 2s -sample-every 30s -flat-after 3m0s -grace 10m0s") {
		t.Errorf("soak command %q", cmd)
	}
	// A short soak on two targets: the warm-up shrinks to a third, the timeout covers both.
	short, err := parseFlags([]string{"-soak", "3m", "-targets", "sqlite,mysql", "-soak-rate", "500"})
	if err != nil {
		t.Fatal(err)
	}
	if short.flatAfter != time.Minute || short.timeout != 46*time.Minute || short.soakRate != 500 || !slices.Equal(short.targets, []string{"sqlite", "mysql"}) {
		t.Errorf("short soak: flat-after %v timeout %v rate %d targets %v; want 1m, 46m, 500, sqlite,mysql", short.flatAfter, short.timeout, short.soakRate, short.targets)
	}
	for _, args := range [][]string{
		{"-soak", "101m"},
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

// TestMain lets TestDumpGoroutines run this test binary as a server that only waits.
func TestMain(m *testing.M) {
	if os.Getenv("CHARLA_LOAD_TEST_IDLE") == "1" {
		fmt.Println("idle")
		time.Sleep(time.Minute)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestDumpGoroutines starts a Go process, judges it not flat, and gets its goroutine
// dump from its log; a flat process is left alone.
func TestDumpGoroutines(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	start := func(name string) soak.Proc {
		log, err := os.Create(filepath.Join(dir, name+".log"))
		if err != nil {
			t.Fatal(err)
		}
		defer log.Close()
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), "CHARLA_LOAD_TEST_IDLE=1")
		cmd.Stdout, cmd.Stderr = log, log
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		t.Cleanup(func() { _ = cmd.Process.Kill(); <-done })
		return soak.Proc{Name: name, PID: cmd.Process.Pid, Role: soak.Server, Log: log.Name()}
	}
	leaky, fine := start("leaky"), start("fine")
	for _, p := range []soak.Proc{leaky, fine} { // wait until both print and sleep
		for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			if b, _ := os.ReadFile(p.Log); strings.Contains(string(b), "idle\n") {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s did not start", p.Name)
			}
		}
	}
	res := &bench.SoakResult{
		Config: bench.SoakConfig{Procs: []soak.Proc{leaky, fine}},
		Checks: [][]soak.Check{
			{{Figure: soak.FigGoroutines, Known: true, Base: 10, End: 500, Limit: 21, Flat: false}},
			{{Figure: soak.FigGoroutines, Known: true, Base: 10, End: 10, Limit: 21, Flat: true}},
		},
	}
	files := dumpGoroutines(res, filepath.Join(dir, "soak"))
	want := filepath.Join(dir, "soak.leaky.goroutines.txt")
	if len(files) != 1 || files[0] != want {
		t.Fatalf("dumps %v, want only %s", files, want)
	}
	b, err := os.ReadFile(want)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(b), "SIGQUIT: quit") || !strings.Contains(string(b), ".TestMain(") || strings.Contains(string(b), "idle\n") {
		t.Errorf("dump %q: want the runtime's stacks from SIGQUIT on, without what came before", b)
	}
	if _, err := os.Stat(filepath.Join(dir, "soak.fine.goroutines.txt")); err == nil {
		t.Error("the flat process was dumped too")
	}
	if err := syscall.Kill(fine.PID, 0); err != nil {
		t.Errorf("the flat process is gone: %v", err)
	}
}

func TestOverloadFlags(t *testing.T) {
	t.Parallel()
	c, err := parseFlags([]string{"-targets", "sqlite", "-modes", "chat,overload"})
	if err != nil {
		t.Fatal(err)
	}
	cfg := c.overloadConfig(4000)
	if cfg.BaseRate != 2000 || cfg.Baseline != 10*time.Second || cfg.Rate != 4000 || cfg.Overload != 30*time.Second ||
		cfg.Recovery != 20*time.Second || cfg.Drain != time.Minute || cfg.Window != time.Second || cfg.Pairs != 1000 {
		t.Errorf("overload defaults %+v: want 2000 msg/s for 10s, 4000 for 30s, 2000 for 20s, drain 1m, 1s windows, 1000 pairs", cfg)
	}
	if low := c.overloadConfig(1000); low.BaseRate != 500 || low.Rate != 1000 {
		t.Errorf("overload at 1000 msg/s: base %d, rate %d; want 500 around 1000 (never a baseline above the overload)", low.BaseRate, low.Rate)
	}
	if cmd := c.command("sqlite"); !strings.Contains(cmd, "-modes chat,overload") || !strings.Contains(cmd, "-overload-base 2000 -overload-baseline 10s -overload-for 30s -overload-recovery 20s -overload-drain 1m0s") || strings.Contains(cmd, "-overload-rate") {
		t.Errorf("command %q: want the overload flags, the rate derived", cmd)
	}
	quick, err := parseFlags([]string{"-quick", "-modes", "overload", "-overload-rate", "3000"})
	if err != nil {
		t.Fatal(err)
	}
	if o := quick.overload; o.base != 200 || o.baseline != 3*time.Second || o.dur != 5*time.Second || o.recovery != 5*time.Second || o.drain != 20*time.Second || o.rate != 3000 {
		t.Errorf("quick overload %+v: want 200 msg/s, 3s, 5s, 5s, drain 20s and the given rate 3000", o)
	}
	if cmd := quick.command("sqlite"); !strings.Contains(cmd, "-overload-rate 3000") {
		t.Errorf("command %q lacks the given rate", cmd)
	}
	for _, args := range [][]string{
		{"-modes", "overload", "-overload-base", "0"},
		{"-modes", "overload", "-overload-rate", "-5"},
		{"-modes", "overload", "-overload-for", "0s"},
		{"-modes", "overload", "-overload-recovery", "6m"},
		{"-modes", "overload", "-overload-drain", "11m"},
		{"-modes", "overload", "-overload-rate", "100000", "-overload-for", "1m"}, // 6 million messages
	} {
		if _, err := parseFlags(args); err == nil {
			t.Errorf("parseFlags(%q): no error", args)
		}
	}
}

// TestOverloadRate derives the overload's rate: the flag, else twice the chat mode's max
// sustainable rate, else the target's default.
func TestOverloadRate(t *testing.T) {
	t.Parallel()
	c, err := parseFlags([]string{"-modes", "chat,overload"})
	if err != nil {
		t.Fatal(err)
	}
	ok := bench.ChatPhase{Rate: 2000, Sent: 20000, Delivered: 20000, Achieved: 2000, P99: 10 * time.Millisecond}
	slow := bench.ChatPhase{Rate: 5000, Sent: 50000, Delivered: 50000, Achieved: 5000, P99: time.Second}
	for _, tc := range []struct {
		name string
		key  string
		flag int
		chat *bench.ChatResult
		want int
		from string
	}{
		{"chat found 2000", "sqlite", 0, &bench.ChatResult{Phases: []bench.ChatPhase{ok, slow}}, 4000, "2 × 2000 msg/s, the max sustainable rate of the chat mode above"},
		{"chat found none", "mysql", 0, &bench.ChatResult{Phases: []bench.ChatPhase{slow}}, 5000, "the chat mode found no sustainable rate: the default for mysql, 2 × 2500 msg/s"},
		{"no chat", "apart", 0, nil, 4000, "the chat mode did not run: the default for apart, 2 × 2000 msg/s"},
		{"the flag wins", "sqlite", 7000, &bench.ChatResult{Phases: []bench.ChatPhase{ok}}, 7000, "-overload-rate"},
	} {
		cc := *c
		cc.overload.rate = tc.flag
		rate, from := cc.overloadRate(tc.key, tc.chat)
		if rate != tc.want || from != tc.from {
			t.Errorf("%s: overloadRate = %d, %q; want %d, %q", tc.name, rate, from, tc.want, tc.from)
		}
	}
}
