// Command charla-load measures a Charla server on this machine and compares every figure
// with a raw gorilla/websocket relay it starts in the same run. It loads loopback
// addresses only, holds at most maxConns connections, and every step is bounded in time;
// it stops by itself.
//
// It starts the server itself (-targets sqlite, mysql, apart: cmd/charla or the services
// and two edges built into a temporary directory, on a fresh database) or attaches to one
// that runs (-targets attach with -edge, -rpc and -server-pid). Modes: idle (connections
// held at rising levels: handshakes per second, RSS per connection), storm (clients
// reconnecting at once), chat (sender→recipient pairs at an open-loop fixed rate, one
// phase per rate: latency, loss, CPU per 1,000 messages) and overload (chat pairs at a
// base rate, then beyond what the server sustains, then the base rate again at once:
// acknowledged messages lost, server RSS, time until p99 is back). The report is
// Markdown, on standard output and in -out.
//
// With -soak it runs the soak instead (by default on apart): chat pairs at -soak-rate
// (1,000 msg/s) for the -soak duration while recipients close their connections and
// resume (-churn per second), counting every message lost, duplicated or out of
// sequence, and samples every server process (RSS, goroutines, open files) every
// -sample-every; it fails unless they stay flat and nothing is lost.
//
//	go run ./cmd/charla-load -targets sqlite -quick
//	go run ./cmd/charla-load -targets attach -edge ws://127.0.0.1:8080/ws -rpc http://127.0.0.1:8090 -server-pid 1234
//	go run ./cmd/charla-load -soak 30m -out soak.md
//
// "charla-load relay -addr 127.0.0.1:0" is the relay alone (the tool runs itself so).
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/charla/charla/cmd/internal/load/bench"
	"github.com/charla/charla/cmd/internal/load/client"
	"github.com/charla/charla/cmd/internal/load/procfs"
	"github.com/charla/charla/cmd/internal/load/relay"
	"github.com/charla/charla/cmd/internal/load/report"
	"github.com/charla/charla/cmd/internal/load/soak"
	"github.com/charla/charla/cmd/internal/load/target"
)

// Bounds on what one run may ask for.
const (
	maxConns    = 60000
	maxPhase    = 5 * time.Minute
	maxDuration = 2 * time.Hour
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "relay" {
		os.Exit(runRelay(os.Args[2:]))
	}
	os.Exit(run(os.Args[1:]))
}

// runRelay serves the raw relay until SIGTERM or SIGINT.
func runRelay(args []string) int {
	fs := flag.NewFlagSet("charla-load relay", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:0", "listen address (loopback)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if err := client.CheckLoopback("ws://" + *addr); err != nil {
		fmt.Fprintf(os.Stderr, "charla-load relay: -addr: %v\n", err)
		return 2
	}
	l, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintf(os.Stderr, "charla-load relay: %v\n", err)
		return 1
	}
	raiseFileLimit()
	r := relay.New(relay.Options{})
	mux := http.NewServeMux()
	mux.Handle("GET /ws", r)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	fmt.Printf("relay listening on %s\n", l.Addr())
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() { <-ctx.Done(); r.Close(); srv.Close() }()
	if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
		fmt.Fprintf(os.Stderr, "charla-load relay: %v\n", err)
		return 1
	}
	return 0
}

type config struct {
	targets     []string
	modes       []string
	levels      []int
	storm       int
	perUser     int
	pairs       int
	rates       []int // nil: the target's default
	phase       time.Duration
	grace       time.Duration
	settle      time.Duration
	stormWait   time.Duration
	concurrency int
	provConc    int
	workers     int
	sources     int
	timeout     time.Duration
	out         string
	repo        string
	mysqlDSN    string
	natsURL     string
	edges       int
	noRelay     bool
	keep        bool
	quick       bool
	soak        time.Duration
	soakRate    int
	overload    overloadFlags
	// the soak mode
	soakMode    time.Duration
	churn       float64
	offline     time.Duration
	sampleEvery time.Duration
	flatAfter   time.Duration
	// attach
	edgeURLs   []string
	rpcURL     string
	profileURL string
	chatURL    string
	serverPIDs []int
	dbPIDs     string
	token      string
}

// defaultRates are the phases per target when -rates is not given.
var defaultRates = map[string][]int{
	"sqlite": {500, 2000, 5000, 10000},
	"mysql":  {500, 1000, 2500, 5000},
	"apart":  {500, 1000, 2000},
	"attach": {500, 2000, 5000, 10000},
	"relay":  {500, 2000, 5000, 10000, 20000},
}

var titles = map[string]string{
	"sqlite": "One process, SQLite",
	"mysql":  "One process, MySQL (MariaDB on the same machine)",
	"apart":  "Apart: four services and two edges, MySQL + NATS",
	"attach": "Attached server",
	"relay":  "The relay alone (calibrates the load tool: its own CPU and the floor)",
}

// overloadFlags set the overload mode.
type overloadFlags struct {
	rate                           int // 0: derived (overloadRate)
	base                           int
	baseline, dur, recovery, drain time.Duration
}

// defaultOverloadRates are the overload's rates when -overload-rate is not given and the
// chat mode did not run (or found no sustainable rate) for the target: twice the issue's
// max sustainable rate target (sqlite 5,000 at least, mysql 2,500), apart twice the
// 2,000 of its soak, the relay twice the 10,000 it sustains in BENCHMARKS.md.
var defaultOverloadRates = map[string]int{
	"sqlite": 10000,
	"mysql":  5000,
	"apart":  4000,
	"attach": 10000,
	"relay":  20000,
}

// Bounds of the overload mode.
const (
	maxOverloadDrain    = 10 * time.Minute
	maxOverloadMessages = 5_000_000
)

// Bounds of the soak mode.
const (
	defaultSoakRate = 1000
	soakGrace       = 10 * time.Minute
	soakMargin      = 20 * time.Minute // per target: building, provisioning, warm-up, drain
	maxSoakMessages = 20_000_000       // the tracker holds 13 bytes per message
)

// soakSettle bounds the wait after the apart chat mode's soak phase (-apart-soak) for late
// answers and deliveries, before its messages are sorted (late, acked lost, unanswered).
const soakSettle = time.Minute

func parseFlags(args []string) (*config, error) {
	c := &config{}
	fs := flag.NewFlagSet("charla-load", flag.ContinueOnError)
	targets := fs.String("targets", "sqlite", "comma-separated: sqlite, mysql, apart (started by the tool), attach, or relay (the relay alone, to calibrate the tool)")
	modes := fs.String("modes", "idle,storm,chat", "comma-separated: idle, storm, chat, overload")
	levels := fs.String("levels", "2000,5000,10000,19000", "idle: connection levels, rising")
	fs.IntVar(&c.storm, "storm", 5000, "storm: clients that drop and reconnect at once (0: none)")
	fs.IntVar(&c.perUser, "conns-per-user", 1, "idle and storm: connections per user")
	fs.IntVar(&c.pairs, "pairs", 1000, "chat: sender→recipient pairs")
	rates := fs.String("rates", "", "chat: total rates in msg/s, one phase each (default per target: sqlite "+ints(defaultRates["sqlite"])+", mysql "+ints(defaultRates["mysql"])+", apart "+ints(defaultRates["apart"])+")")
	fs.DurationVar(&c.phase, "phase", 10*time.Second, "chat: duration of each rate")
	fs.DurationVar(&c.grace, "grace", 3*time.Second, "chat: how long after a phase a message may still arrive before it counts lost (soak: 10m)")
	fs.DurationVar(&c.settle, "settle", 2*time.Second, "pause before reading memory and before chatting")
	fs.DurationVar(&c.stormWait, "storm-timeout", time.Minute, "storm: bound on the reconnection")
	fs.IntVar(&c.concurrency, "dial-concurrency", 64, "handshakes in flight while ramping up")
	fs.IntVar(&c.provConc, "provision-concurrency", 32, "RPC calls in flight while provisioning")
	fs.IntVar(&c.workers, "workers", 8, "chat: writer goroutines fed by the scheduler")
	fs.IntVar(&c.sources, "source-addrs", 4, "loopback source addresses 127.0.0.1..N (ephemeral ports per address)")
	fs.DurationVar(&c.timeout, "timeout", 40*time.Minute, "bound on the whole run")
	fs.StringVar(&c.out, "out", "", "also write the report to this file (BENCHMARKS.md)")
	fs.StringVar(&c.repo, "repo", "", "repository root to build the server from (default: found from the working directory)")
	fs.StringVar(&c.mysqlDSN, "mysql", "root@tcp(127.0.0.1:3306)/", "mysql, apart: admin DSN of the MySQL server (a fresh database is created and dropped)")
	fs.StringVar(&c.natsURL, "nats", "nats://127.0.0.1:4222", "apart: BUS_URL")
	fs.IntVar(&c.edges, "edges", 2, "apart: number of edges")
	fs.BoolVar(&c.noRelay, "no-relay", false, "skip the relay baseline")
	fs.BoolVar(&c.keep, "keep", false, "keep the temporary directory (binaries, servers' logs, SQLite database) and print its path")
	fs.DurationVar(&c.soak, "apart-soak", time.Minute, "apart: a last chat phase this long at -soak-rate (0: none)")
	fs.IntVar(&c.soakRate, "soak-rate", 2000, "apart: rate of the soak phase in msg/s; with -soak, the soak's rate (default 1000)")
	fs.DurationVar(&c.soakMode, "soak", 0, "run the soak instead of -modes, this long (30m for make soak): chat pairs at -soak-rate with recipients resuming, every server process sampled; default target apart")
	fs.Float64Var(&c.churn, "churn", 2, "soak: recipients per second that close their connection and resume (0: none)")
	fs.DurationVar(&c.offline, "offline", 2*time.Second, "soak: mean time a churned recipient stays away (uniform in [0, 2×offline])")
	fs.DurationVar(&c.sampleEvery, "sample-every", 30*time.Second, "soak: time between samples of the processes")
	fs.DurationVar(&c.flatAfter, "flat-after", 3*time.Minute, "soak: warm-up left out of the flatness verdict (a third of a soak shorter than twice it)")
	fs.IntVar(&c.overload.rate, "overload-rate", 0, "overload: the overload's total rate in msg/s (default: 2 × the max sustainable rate the chat mode found in this run for the target, else sqlite "+strconv.Itoa(defaultOverloadRates["sqlite"])+", mysql "+strconv.Itoa(defaultOverloadRates["mysql"])+", apart "+strconv.Itoa(defaultOverloadRates["apart"])+")")
	fs.DurationVar(&c.overload.dur, "overload-for", 30*time.Second, "overload: how long the overload's rate is offered")
	fs.IntVar(&c.overload.base, "overload-base", 2000, "overload: total rate of the baseline and the recovery in msg/s (at most half the overload rate)")
	fs.DurationVar(&c.overload.baseline, "overload-baseline", 10*time.Second, "overload: duration of the baseline before the overload")
	fs.DurationVar(&c.overload.recovery, "overload-recovery", 20*time.Second, "overload: duration of the recovery, at once after the overload")
	fs.DurationVar(&c.overload.drain, "overload-drain", time.Minute, "overload: bound on the wait for every message after the recovery (later ones are lost)")
	fs.BoolVar(&c.quick, "quick", false, "a smoke run of about two minutes: small levels, few pairs, short phases")
	edge := fs.String("edge", "", "attach: comma-separated WebSocket URLs of the edges (ws://127.0.0.1:8080/ws)")
	fs.StringVar(&c.rpcURL, "rpc", "", "attach: internal RPC base URL of the one-process build (http://127.0.0.1:8090)")
	fs.StringVar(&c.profileURL, "profile-rpc", "", "attach: profile service base URL (default -rpc)")
	fs.StringVar(&c.chatURL, "chat-rpc", "", "attach: chat service base URL (default -rpc)")
	pids := fs.String("server-pid", "", "attach: comma-separated pids of the server's processes")
	fs.StringVar(&c.dbPIDs, "db-pid", "", "comma-separated pids of the database server, or auto (mariadbd/mysqld); default auto for mysql and apart")
	fs.StringVar(&c.token, "internal-token", os.Getenv("INTERNAL_API_TOKEN"), "attach: internal API bearer token, if the server requires one")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if c.quick {
		// Smaller everything unless given explicitly.
		if !set["levels"] {
			*levels = "500,1000"
		}
		if !set["storm"] {
			c.storm = 500
		}
		if !set["pairs"] {
			c.pairs = 100
		}
		if !set["phase"] {
			c.phase = 3 * time.Second
		}
		if !set["rates"] {
			*rates = "200,1000"
		}
		if !set["settle"] {
			c.settle = time.Second
		}
		if !set["apart-soak"] {
			c.soak = 0
		}
		c.overload.quick(set)
	}
	if c.soakMode != 0 {
		if err := c.soakDefaults(set, targets); err != nil {
			return nil, err
		}
	}
	var err error
	c.targets = split(*targets)
	for _, t := range c.targets {
		if _, ok := titles[t]; !ok {
			return nil, fmt.Errorf("-targets: unknown target %q (want sqlite, mysql, apart, attach or relay)", t)
		}
	}
	c.modes = split(*modes)
	for _, m := range c.modes {
		if m != "idle" && m != "storm" && m != "chat" && m != "overload" {
			return nil, fmt.Errorf("-modes: unknown mode %q (want idle, storm, chat or overload)", m)
		}
	}
	if err := c.overload.check(); err != nil {
		return nil, err
	}
	if c.levels, err = parseInts("-levels", *levels); err != nil {
		return nil, err
	}
	if !slices.IsSorted(c.levels) || len(slices.Compact(slices.Clone(c.levels))) != len(c.levels) {
		return nil, fmt.Errorf("-levels %q: want strictly rising", *levels)
	}
	if *rates != "" {
		if c.rates, err = parseInts("-rates", *rates); err != nil {
			return nil, err
		}
	}
	top := c.storm
	if len(c.levels) > 0 {
		top = max(top, c.levels[len(c.levels)-1])
	}
	switch {
	case top > maxConns || 2*c.pairs > maxConns:
		return nil, fmt.Errorf("at most %d connections per mode; -levels, -storm or -pairs asks for more", maxConns)
	case c.storm < 0 || c.pairs < 1 || c.perUser < 1:
		return nil, errors.New("-storm must be ≥ 0, -pairs and -conns-per-user ≥ 1")
	case c.phase <= 0 || c.phase > maxPhase:
		return nil, fmt.Errorf("-phase %v: want (0, %v]", c.phase, maxPhase)
	case c.timeout <= 0 || c.timeout > maxDuration:
		return nil, fmt.Errorf("-timeout %v: want (0, %v]", c.timeout, maxDuration)
	case c.edges < 1 || c.edges > 8:
		return nil, fmt.Errorf("-edges %d: want 1 to 8", c.edges)
	case c.sources < 1 || c.sources > 250:
		return nil, fmt.Errorf("-source-addrs %d: want 1 to 250", c.sources)
	}
	if c.soakMode != 0 && slices.Contains(c.targets, "relay") {
		return nil, errors.New("-soak: the relay has no resume; want sqlite, mysql, apart or attach")
	}
	c.edgeURLs = split(*edge)
	if c.serverPIDs, err = parseInts("-server-pid", *pids); err != nil {
		return nil, err
	}
	if slices.Contains(c.targets, "attach") {
		if len(c.edgeURLs) == 0 || len(c.serverPIDs) == 0 {
			return nil, errors.New("-targets attach needs -edge and -server-pid")
		}
		if c.profileURL == "" {
			c.profileURL = c.rpcURL
		}
		if c.chatURL == "" {
			c.chatURL = c.rpcURL
		}
		if c.profileURL == "" || c.chatURL == "" {
			return nil, errors.New("-targets attach needs -rpc (or -profile-rpc and -chat-rpc)")
		}
		for _, u := range append(slices.Clone(c.edgeURLs), c.profileURL, c.chatURL) {
			if err := client.CheckLoopback(u); err != nil {
				return nil, err
			}
		}
	}
	return c, nil
}

// soakDefaults fills in and checks the soak's settings: apart unless -targets is given,
// 1,000 msg/s unless -soak-rate is, a timeout that fits the soaks.
func (c *config) soakDefaults(set map[string]bool, targets *string) error {
	if !set["targets"] {
		*targets = "apart"
	}
	if !set["soak-rate"] {
		c.soakRate = defaultSoakRate
	}
	if !set["grace"] {
		// A message is lost only if it never comes; on a shared machine a backlog of
		// minutes is late, not lost. The drain ends as soon as everything has arrived.
		c.grace = soakGrace
	}
	if !set["flat-after"] && 2*c.flatAfter > c.soakMode {
		c.flatAfter = (c.soakMode / 3).Truncate(time.Second)
	}
	n := time.Duration(len(split(*targets)))
	if !set["timeout"] {
		c.timeout = min(maxDuration, n*(c.soakMode+soakMargin))
	}
	switch {
	case c.soakMode < 0 || c.soakMode > maxDuration-soakMargin:
		return fmt.Errorf("-soak %v: want (0, %v]", c.soakMode, maxDuration-soakMargin)
	case c.soakMode+5*time.Minute > c.timeout:
		return fmt.Errorf("-soak %v does not fit in -timeout %v with 5 minutes to set up", c.soakMode, c.timeout)
	case c.soakRate < 1 || int64(c.soakRate)*int64(c.soakMode/time.Second) > maxSoakMessages:
		return fmt.Errorf("-soak-rate %d for %v: want between 1 and %d messages in all", c.soakRate, c.soakMode, maxSoakMessages)
	case c.churn < 0 || c.churn > 1000:
		return fmt.Errorf("-churn %v: want 0 to 1000 per second", c.churn)
	case c.offline < 0 || c.offline > time.Minute:
		return fmt.Errorf("-offline %v: want 0 to 1m (the server holds 5 minutes of events for resume)", c.offline)
	case c.sampleEvery < time.Second || c.sampleEvery > c.soakMode:
		return fmt.Errorf("-sample-every %v: want 1s to the soak's duration", c.sampleEvery)
	case c.flatAfter < 0 || c.flatAfter >= c.soakMode:
		return fmt.Errorf("-flat-after %v: want less than the soak's %v", c.flatAfter, c.soakMode)
	}
	return nil
}

// soakCommand is the invocation that reproduces one target's soak alone.
func (c *config) soakCommand(key string) string {
	args := []string{"go run ./cmd/charla-load", "-soak " + c.soakMode.String(), "-targets " + key,
		fmt.Sprintf("-pairs %d -soak-rate %d -churn %v -offline %v -sample-every %v -flat-after %v -grace %v", c.pairs, c.soakRate, c.churn, c.offline, c.sampleEvery, c.flatAfter, c.grace)}
	if key == "apart" && c.edges != 2 {
		args = append(args, fmt.Sprintf("-edges %d", c.edges))
	}
	if key == "attach" {
		args = append(args, "-edge "+strings.Join(c.edgeURLs, ","), "-profile-rpc "+c.profileURL, "-chat-rpc "+c.chatURL, "-server-pid "+ints(c.serverPIDs))
	}
	return strings.Join(args, " ")
}

func (c *config) has(mode string) bool { return slices.Contains(c.modes, mode) }

func (c *config) ratesFor(key string) []int {
	if c.rates != nil {
		return c.rates
	}
	return defaultRates[key]
}

// command is the invocation that reproduces one scenario alone.
func (c *config) command(key string) string {
	args := []string{"go run ./cmd/charla-load", "-targets " + key, "-modes " + strings.Join(c.modes, ",")}
	if c.has("idle") {
		args = append(args, "-levels "+ints(c.levels))
	}
	if c.has("idle") || c.has("storm") {
		args = append(args, fmt.Sprintf("-storm %d", c.storm))
		if c.perUser != 1 {
			args = append(args, fmt.Sprintf("-conns-per-user %d", c.perUser))
		}
	}
	if c.has("chat") {
		args = append(args, fmt.Sprintf("-pairs %d -rates %s -phase %v -grace %v", c.pairs, ints(c.ratesFor(key)), c.phase, c.grace))
	}
	if key == "apart" && c.edges != 2 {
		args = append(args, fmt.Sprintf("-edges %d", c.edges))
	}
	if key == "apart" && c.has("chat") {
		args = append(args, fmt.Sprintf("-apart-soak %v -soak-rate %d", c.soak, c.soakRate))
	}
	if c.has("overload") {
		args = append(args, c.overload.args())
	}
	if key == "attach" {
		args = append(args, "-edge "+strings.Join(c.edgeURLs, ","), "-profile-rpc "+c.profileURL, "-chat-rpc "+c.chatURL, "-server-pid "+ints(c.serverPIDs))
	}
	return strings.Join(args, " ")
}

func run(args []string) int {
	c, err := parseFlags(args)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(os.Stderr, "charla-load: %v\n", err)
		return 2
	}
	raiseFileLimit()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()

	tmp, err := os.MkdirTemp("", "charla-load-")
	if err != nil {
		fmt.Fprintf(os.Stderr, "charla-load: %v\n", err)
		return 1
	}
	if c.keep {
		defer fmt.Fprintf(os.Stderr, "charla-load: kept %s\n", tmp)
	} else {
		defer os.RemoveAll(tmp)
	}
	if c.repo == "" {
		c.repo = findRepo()
	}
	builder := &target.Builder{Repo: c.repo, Dir: tmp}
	opts := &bench.Options{Dialer: client.NewDialer(c.sources), Concurrency: c.concurrency, Settle: c.settle, Progress: os.Stderr, Start: time.Now()}
	if c.soakMode > 0 {
		return runSoaks(ctx, c, args, builder, opts)
	}
	rb := &relayBaseline{cfg: c, opts: opts}
	defer rb.close()

	var doc bytes.Buffer
	report.Header(&doc, time.Now(), commit(c.repo), cpuModel(), runtime.NumCPU(), loadAvg(),
		"go run ./cmd/charla-load "+strings.Join(args, " "), runtime.Version())
	failed := false
	for _, key := range c.targets {
		sc := runScenario(ctx, c, key, builder, opts, rb)
		if sc.Err != nil {
			failed = true
			fmt.Fprintf(os.Stderr, "charla-load: %s: %v\n", key, sc.Err)
		}
		report.Write(&doc, sc)
		if ctx.Err() != nil {
			break
		}
	}
	os.Stdout.Write(doc.Bytes())
	if c.out != "" {
		if err := os.WriteFile(c.out, doc.Bytes(), 0o644); err != nil {
			fmt.Fprintf(os.Stderr, "charla-load: %v\n", err)
			return 1
		}
	}
	if failed {
		return 1
	}
	return 0
}

func runScenario(ctx context.Context, c *config, key string, b *target.Builder, opts *bench.Options, rb *relayBaseline) report.Scenario {
	sc := report.Scenario{Key: key, Title: titles[key], Command: c.command(key), Pairs: c.pairs, Phase: c.phase}
	srv, err := startAnnounced(ctx, c, key, b)
	if err != nil {
		sc.Err = err
		return sc
	}
	defer srv.Close()
	sc.Describe = srv.Describe
	rb.skip = key == "relay"
	defer func() { rb.skip = false }()
	var errs []error
	if c.has("idle") || c.has("storm") {
		icfg := bench.IdleConfig{ConnsPerUser: c.perUser, StormTimeout: c.stormWait}
		if c.has("idle") {
			icfg.Levels = c.levels
		}
		if c.has("storm") {
			icfg.Storm = c.storm
		}
		if sc.Relay.Idle, err = rb.idle(ctx, icfg); err != nil {
			sc.Err = err
			return sc
		}
		res, err := bench.RunIdle(ctx, opts, &srv.Target, icfg)
		sc.Charla.Idle = &res
		if err != nil {
			errs = append(errs, err) // the chat mode still runs
		}
		// Let the server finish the disconnections before the next mode.
		if err := pause(ctx, 2*c.settle); err != nil {
			sc.Err = errors.Join(append(errs, err)...)
			return sc
		}
	}
	if c.has("chat") {
		ccfg := bench.ChatConfig{Pairs: c.pairs, Rates: c.ratesFor(key), Phase: c.phase, Grace: c.grace, Workers: c.workers}
		if key == "apart" {
			ccfg.SoakRate, ccfg.Soak, ccfg.SoakSettle = c.soakRate, c.soak, soakSettle
		}
		if sc.Relay.Chat, err = rb.chat(ctx, ccfg); err != nil {
			errs = append(errs, err)
		}
		res, err := bench.RunChat(ctx, opts, &srv.Target, ccfg)
		sc.Charla.Chat = &res
		if err != nil {
			errs = append(errs, err)
		}
	}
	if c.has("overload") {
		if c.has("chat") || c.has("idle") || c.has("storm") {
			// Let the server finish the previous mode's disconnections.
			if err := pause(ctx, 2*c.settle); err != nil {
				sc.Err = errors.Join(append(errs, err)...)
				return sc
			}
		}
		rate, from := c.overloadRate(key, sc.Charla.Chat)
		sc.OverloadFrom = from
		res, err := bench.RunOverload(ctx, opts, &srv.Target, c.overloadConfig(rate))
		sc.Charla.Overload = &res
		if err != nil {
			errs = append(errs, err)
		}
	}
	sc.Err = errors.Join(errs...)
	return sc
}

// overloadRate is the overload's rate for a target: -overload-rate, else twice the max
// sustainable rate of the chat mode's phases (chat is nil when it did not run), else
// the target's default; the second result says which, for the report.
func (c *config) overloadRate(key string, chat *bench.ChatResult) (int, string) {
	if c.overload.rate > 0 {
		return c.overload.rate, "-overload-rate"
	}
	if chat != nil {
		if s := report.Sustainable(chat.Phases); s > 0 {
			return 2 * s, fmt.Sprintf("2 × %d msg/s, the max sustainable rate of the chat mode above", s)
		}
	}
	r := defaultOverloadRates[key]
	why := "the chat mode did not run"
	if chat != nil {
		why = "the chat mode found no sustainable rate"
	}
	return r, fmt.Sprintf("%s: the default for %s, 2 × %d msg/s", why, key, r/2)
}

// overloadConfig is the overload mode's configuration at an overload rate. The baseline
// and the recovery run at -overload-base, or at half the overload rate when that is lower:
// where the max sustainable rate is below the base (MySQL: 500 msg/s), an overload at
// twice it would otherwise be lighter than the baseline around it.
func (c *config) overloadConfig(rate int) bench.OverloadConfig {
	o := c.overload
	base := o.base
	if rate < 2*base {
		base = max(rate/2, 1)
	}
	return bench.OverloadConfig{
		Pairs: c.pairs, BaseRate: base, Baseline: o.baseline, Rate: rate, Overload: o.dur, Recovery: o.recovery,
		Drain: o.drain, Workers: c.workers, Window: time.Second,
	}
}

// quick shortens the overload mode for -quick, unless its flags are given.
func (o *overloadFlags) quick(set map[string]bool) {
	if !set["overload-base"] {
		o.base = 200
	}
	if !set["overload-baseline"] {
		o.baseline = 3 * time.Second
	}
	if !set["overload-for"] {
		o.dur = 5 * time.Second
	}
	if !set["overload-recovery"] {
		o.recovery = 5 * time.Second
	}
	if !set["overload-drain"] {
		o.drain = 20 * time.Second
	}
}

// check bounds the overload mode's flags (RunOverload bounds a derived rate's messages
// the same way).
func (o *overloadFlags) check() error {
	switch {
	case o.rate < 0 || o.base < 1:
		return fmt.Errorf("-overload-rate %d, -overload-base %d: want ≥ 0 and ≥ 1", o.rate, o.base)
	case o.baseline <= 0 || o.baseline > maxPhase || o.dur <= 0 || o.dur > maxPhase || o.recovery <= 0 || o.recovery > maxPhase:
		return fmt.Errorf("-overload-baseline %v, -overload-for %v, -overload-recovery %v: want (0, %v]", o.baseline, o.dur, o.recovery, maxPhase)
	case o.drain <= 0 || o.drain > maxOverloadDrain:
		return fmt.Errorf("-overload-drain %v: want (0, %v]", o.drain, maxOverloadDrain)
	}
	n := float64(o.base)*(o.baseline+o.recovery).Seconds() + float64(o.rate)*o.dur.Seconds()
	if n > maxOverloadMessages {
		return fmt.Errorf("the overload mode would send %.0f messages, want at most %d", n, maxOverloadMessages)
	}
	return nil
}

// args are the overload's flags, for the command that reproduces a scenario.
func (o *overloadFlags) args() string {
	s := fmt.Sprintf("-overload-base %d -overload-baseline %v -overload-for %v -overload-recovery %v -overload-drain %v", o.base, o.baseline, o.dur, o.recovery, o.drain)
	if o.rate > 0 {
		s += fmt.Sprintf(" -overload-rate %d", o.rate)
	}
	return s
}

// runSoaks runs the soak on every target in turn and writes the report; it fails unless
// every soak passed.
func runSoaks(ctx context.Context, c *config, args []string, b *target.Builder, opts *bench.Options) int {
	start, loadStart := time.Now(), loadAvg()
	var body bytes.Buffer
	passed := true
	for _, key := range c.targets {
		sc := runSoak(ctx, c, key, b, opts)
		if sc.Err != nil {
			fmt.Fprintf(os.Stderr, "charla-load: %s: %v\n", key, sc.Err)
		}
		passed = passed && sc.Err == nil && report.SoakPassed(sc.Result)
		report.WriteSoak(&body, sc)
		if ctx.Err() != nil {
			break
		}
	}
	var doc bytes.Buffer
	report.SoakHeader(&doc, start, commit(c.repo), cpuModel(), runtime.NumCPU(), loadStart, loadAvg(),
		"go run ./cmd/charla-load "+strings.Join(args, " "), runtime.Version())
	doc.Write(body.Bytes())
	os.Stdout.Write(doc.Bytes())
	if c.out != "" {
		if err := os.WriteFile(c.out, doc.Bytes(), 0o644); err != nil {
			fmt.Fprintf(os.Stderr, "charla-load: %v\n", err)
			return 1
		}
	}
	if !passed {
		fmt.Fprintln(os.Stderr, "charla-load: the soak failed (see the verdict in the report)")
		return 1
	}
	return 0
}

func runSoak(ctx context.Context, c *config, key string, b *target.Builder, opts *bench.Options) report.SoakScenario {
	sc := report.SoakScenario{Title: titles[key], Command: c.soakCommand(key)}
	srv, err := startAnnounced(ctx, c, key, b)
	if err != nil {
		sc.Err = err
		return sc
	}
	defer srv.Close()
	sc.Describe = srv.Describe
	cfg := bench.SoakConfig{
		Pairs: c.pairs, Rate: c.soakRate, Duration: c.soakMode, Grace: c.grace, Workers: c.workers,
		Churn: c.churn, Offline: c.offline, Interval: c.sampleEvery, FlatAfter: c.flatAfter, Bounds: soak.DefaultBounds, Rest: c.sampleEvery,
		Procs: watched(key, srv),
	}
	res, err := bench.RunSoak(ctx, opts, &srv.Target, cfg)
	sc.Result, sc.Err = &res, err
	if err != nil && len(res.Rows) == 0 {
		sc.Result = nil
	}
	if err == nil && c.out != "" {
		sc.Dumps = dumpGoroutines(&res, strings.TrimSuffix(c.out, ".md"))
	}
	return sc
}

// dumpGoroutines asks every server process the tool started that is not flat for its
// goroutines with SIGQUIT (the Go runtime writes every goroutine's stack to the process's
// log and exits) and copies the dump to <prefix>.<name>.goroutines.txt; it returns the
// files written.
func dumpGoroutines(res *bench.SoakResult, prefix string) []string {
	var out []string
	for i, p := range res.Config.Procs {
		if p.Role != soak.Server || p.Log == "" || i >= len(res.Checks) || soak.Flat(res.Checks[i]) {
			continue
		}
		if err := syscall.Kill(p.PID, syscall.SIGQUIT); err != nil {
			fmt.Fprintf(os.Stderr, "charla-load: goroutine dump of %s: %v\n", p.Name, err)
			continue
		}
		// The runtime writes the dump and exits; wait for the process to be gone.
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
			if _, err := procfs.RSS(p.PID); err != nil {
				break
			}
		}
		b, err := os.ReadFile(p.Log)
		if err != nil {
			fmt.Fprintf(os.Stderr, "charla-load: goroutine dump of %s: %v\n", p.Name, err)
			continue
		}
		if i := bytes.Index(b, []byte("SIGQUIT: quit")); i >= 0 {
			b = b[i:]
		}
		name := prefix + "." + p.Name + ".goroutines.txt"
		if err := os.WriteFile(name, b, 0o644); err != nil {
			fmt.Fprintf(os.Stderr, "charla-load: goroutine dump of %s: %v\n", p.Name, err)
			continue
		}
		out = append(out, name)
	}
	return out
}

// watched lists the processes the soak samples: the server's, the database's and NATS's
// (not judged: their memory follows the data) and the load tool itself.
func watched(key string, srv *target.Running) []soak.Proc {
	procs := slices.Clone(srv.Procs)
	if len(procs) == 0 { // attached: pids only
		for _, pid := range srv.PIDs {
			procs = append(procs, soak.Proc{Name: fmt.Sprintf("server pid %d", pid), PID: pid, Role: soak.Server})
		}
	}
	for _, pid := range srv.DBPIDs {
		procs = append(procs, soak.Proc{Name: "mariadbd", PID: pid, Role: soak.Database})
	}
	if key == "apart" {
		if pids, err := procfs.FindByName("nats-server"); err == nil {
			for _, pid := range pids {
				procs = append(procs, soak.Proc{Name: "nats-server", PID: pid, Role: soak.Bus})
			}
		}
	}
	return append(procs, soak.Proc{Name: "charla-load", PID: os.Getpid(), Role: soak.LoadTool})
}

// startAnnounced starts the target of key and says on stderr what runs.
func startAnnounced(ctx context.Context, c *config, key string, b *target.Builder) (*target.Running, error) {
	srv, err := startTarget(ctx, c, key, b)
	if err == nil {
		fmt.Fprintf(os.Stderr, "[%s] %s\n", key, srv.Describe)
	}
	return srv, err
}

func startTarget(ctx context.Context, c *config, key string, b *target.Builder) (*target.Running, error) {
	prefix := "ld" + strconv.FormatInt(time.Now().UnixNano()%1e9, 36)
	dbPIDs, err := dbPIDs(c.dbPIDs, key == "mysql" || key == "apart")
	if err != nil {
		return nil, err
	}
	switch key {
	case "attach":
		return target.Attach(c.edgeURLs, c.profileURL, c.chatURL, c.token, prefix, c.serverPIDs, dbPIDs, c.provConc), nil
	case "relay":
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("relay: %w", err)
		}
		return target.Relay(ctx, exe, "relay", "-addr", "127.0.0.1:0")
	case "sqlite":
		return target.OneProcess(ctx, b, "sqlite://"+filepath.Join(b.Dir, "charla.db"), prefix, dbPIDs, c.provConc)
	}
	url, drop, err := target.FreshMySQL(ctx, c.mysqlDSN)
	if err != nil {
		return nil, err
	}
	var r *target.Running
	if key == "mysql" {
		r, err = target.OneProcess(ctx, b, url, prefix, dbPIDs, c.provConc)
	} else {
		stream, dropStream := target.FreshStream(c.natsURL)
		dropDB := drop
		drop = func() { dropStream(); dropDB() }
		r, err = target.Apart(ctx, b, url, c.natsURL, stream, c.edges, prefix, dbPIDs, c.provConc)
	}
	if err != nil {
		drop()
		return nil, err
	}
	return withCloser(r, drop), nil
}

// withCloser returns r with f to run after r's own closers (Closers run last first): the
// database is dropped once the processes using it have stopped.
func withCloser(r *target.Running, f func()) *target.Running {
	inner := *r
	return &target.Running{Target: r.Target, Describe: r.Describe, Procs: r.Procs, Closers: []func(){f, inner.Close}}
}

func dbPIDs(flagValue string, auto bool) ([]int, error) {
	if flagValue == "auto" || (flagValue == "" && auto) {
		return target.MySQLServerPIDs()
	}
	return parseInts("-db-pid", flagValue)
}

// relayBaseline starts the relay once and remembers its figures, so scenarios sharing a
// configuration share the baseline; chat figures are kept per rate.
type relayBaseline struct {
	cfg   *config
	opts  *bench.Options
	r     *target.Running
	idles map[string]*bench.IdleResult
	rates map[int]bench.ChatPhase
	chatP int
	skip  bool // the scenario under way measures the relay itself
}

func (rb *relayBaseline) start(ctx context.Context) (*target.Running, error) {
	if rb.r != nil {
		return rb.r, nil
	}
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("relay: %w", err)
	}
	r, err := target.Relay(ctx, exe, "relay", "-addr", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	rb.r = r
	return r, nil
}

func (rb *relayBaseline) close() {
	if rb.r != nil {
		rb.r.Close()
	}
}

func (rb *relayBaseline) idle(ctx context.Context, cfg bench.IdleConfig) (*bench.IdleResult, error) {
	if rb.cfg.noRelay || rb.skip {
		return nil, nil
	}
	key := fmt.Sprint(cfg)
	if res, ok := rb.idles[key]; ok {
		return res, nil
	}
	r, err := rb.start(ctx)
	if err != nil {
		return nil, err
	}
	res, err := bench.RunIdle(ctx, rb.opts, &r.Target, cfg)
	if err != nil {
		return nil, fmt.Errorf("relay baseline: %w", err)
	}
	if rb.idles == nil {
		rb.idles = map[string]*bench.IdleResult{}
	}
	rb.idles[key] = &res
	return &res, pause(ctx, rb.cfg.settle)
}

func (rb *relayBaseline) chat(ctx context.Context, cfg bench.ChatConfig) (*bench.ChatResult, error) {
	if rb.cfg.noRelay || rb.skip {
		return nil, nil
	}
	var missing []int
	for _, rate := range cfg.Rates {
		if _, ok := rb.rates[rate]; !ok {
			missing = append(missing, rate)
		}
	}
	if len(missing) > 0 {
		r, err := rb.start(ctx)
		if err != nil {
			return nil, err
		}
		run := cfg
		run.Rates = missing
		run.Soak = 0 // the soak is a property of the server alone
		res, err := bench.RunChat(ctx, rb.opts, &r.Target, run)
		if err != nil {
			return nil, fmt.Errorf("relay baseline: %w", err)
		}
		if rb.rates == nil {
			rb.rates = map[int]bench.ChatPhase{}
		}
		for _, p := range res.Phases {
			rb.rates[p.Rate] = p
		}
		rb.chatP = res.Pairs
	}
	out := &bench.ChatResult{Pairs: rb.chatP}
	for _, rate := range cfg.Rates {
		out.Phases = append(out.Phases, rb.rates[rate])
	}
	return out, nil
}

// raiseFileLimit lifts the soft limit on open files to the hard one: every connection is
// a descriptor.
func raiseFileLimit() {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		return
	}
	if l.Cur < l.Max {
		l.Cur = l.Max
		_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l)
	}
}

func pause(ctx context.Context, d time.Duration) error {
	select {
	case <-time.After(d):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func findRepo() string {
	dir, err := os.Getwd()
	if err != nil {
		return "."
	}
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.work")); err == nil {
			return d
		}
		if filepath.Dir(d) == d {
			return dir
		}
	}
}

func commit(repo string) string {
	out, err := exec.Command("git", "-C", repo, "rev-parse", "--short", "HEAD").Output()
	if err != nil {
		return "unknown"
	}
	c := strings.TrimSpace(string(out))
	st, err := exec.Command("git", "-C", repo, "status", "--porcelain", "--untracked-files=no", "--", ".", ":!BENCHMARKS.md").Output()
	if err == nil && len(bytes.TrimSpace(st)) > 0 {
		c += " (with uncommitted changes)"
	}
	return c
}

func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown CPU"
	}
	for line := range strings.Lines(string(b)) {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown CPU"
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ") + " (1, 5, 15 min; the machine is shared, figures are noisy)"
}

func split(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func parseInts(name, s string) ([]int, error) {
	var out []int
	for _, p := range split(s) {
		n, err := strconv.Atoi(p)
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("%s: %q is not a positive integer", name, p)
		}
		out = append(out, n)
	}
	return out, nil
}

func ints(v []int) string {
	s := make([]string, len(v))
	for i, n := range v {
		s[i] = strconv.Itoa(n)
	}
	return strings.Join(s, ",")
}
