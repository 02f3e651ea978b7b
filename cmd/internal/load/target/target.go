// Package target starts what the load tool measures, each as its own process so /proc
// tells its memory and CPU apart from the tool's: the raw relay (the tool re-executed with
// its relay subcommand), Charla in one process (cmd/charla built into a temporary
// directory), or Charla apart (four services and several edges); and the fresh MySQL
// database a run needs. Close stops the processes it started (SIGTERM, then SIGKILL) and
// drops the database.
package target

import (
	"bufio"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/charla/charla/cmd/internal/load/bench"
	"github.com/charla/charla/cmd/internal/load/procfs"
	"github.com/charla/charla/cmd/internal/load/provision"
	"github.com/charla/charla/cmd/internal/load/soak"
)

// readyTimeout bounds a server's start (migrations included).
const readyTimeout = 2 * time.Minute

// Running is a started (or attached) target.
type Running struct {
	bench.Target
	// Describe says how it runs, for the report (environment, binaries).
	Describe string
	// Procs names the server's processes (in the order of PIDs) and their /metrics, for
	// the soak; the relay and attached servers have none.
	Procs []soak.Proc
	// Closers run in reverse order on Close.
	Closers []func()
}

// Close stops what was started, in reverse order.
func (r *Running) Close() {
	for i := len(r.Closers) - 1; i >= 0; i-- {
		r.Closers[i]()
	}
	r.Closers = nil
}

// Attach describes a server that is already running: its edges' WebSocket URLs, its
// internal RPC base URLs for profile and chat, and its pids (and the database's).
func Attach(edges []string, profileURL, chatURL, token, prefix string, pids, dbPIDs []int, concurrency int) *Running {
	return &Running{
		Target: bench.Target{
			Name: "charla", Edges: edges, PIDs: pids, DBPIDs: dbPIDs,
			Prov: provision.NewRPC(profileURL, chatURL, prefix, token, concurrency),
		},
		Describe: "attached to " + strings.Join(edges, ", "),
	}
}

// Relay starts the raw relay: exe (the load tool itself) with args (its relay
// subcommand), which prints "relay listening on <addr>" once it serves.
func Relay(ctx context.Context, exe string, args ...string) (*Running, error) {
	cmd := exec.Command(exe, args...)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("relay: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("relay: start %s: %w", exe, err)
	}
	p := watch(cmd, nil)
	r := &Running{Target: bench.Target{Name: "relay", PIDs: []int{cmd.Process.Pid}, Prov: &provision.Relay{}}}
	r.Closers = append(r.Closers, p.stop)
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		r.Close()
		return nil, fmt.Errorf("relay: no address printed: %w", err)
	}
	addr, ok := strings.CutPrefix(strings.TrimSpace(line), "relay listening on ")
	if !ok {
		r.Close()
		return nil, fmt.Errorf("relay: unexpected first line %q", line)
	}
	go func() { _, _ = io.Copy(io.Discard, out) }()
	r.Edges = []string{"ws://" + addr + "/ws"}
	r.Describe = "raw gorilla/websocket relay (" + exe + " relay)"
	return r, nil
}

// Builder builds Charla's binaries once per run into a temporary directory.
type Builder struct {
	// Repo is the repository root (where go.work is).
	Repo string
	// Dir receives the binaries and the servers' logs.
	Dir   string
	built map[string]string
}

// Build returns the path of the binary of the main package pkg ("./cmd/charla"),
// building it on first use.
func (b *Builder) Build(ctx context.Context, pkg string) (string, error) {
	if p, ok := b.built[pkg]; ok {
		return p, nil
	}
	out := filepath.Join(b.Dir, filepath.Base(pkg))
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, pkg)
	cmd.Dir = b.Repo
	if msg, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build %s: %w\n%s", pkg, err, msg)
	}
	// The build leaves tens of MiB in the page cache (the binary, the build cache), which
	// the kernel writes back 30 s later (vm.dirty_expire_centisecs), in the middle of a
	// measurement: MariaDB's commits, each waiting for an fsync, took 46 ms while it did,
	// a p99 spike that was the disk's, not Charla's. Writing it back now keeps it out.
	syscall.Sync()
	if b.built == nil {
		b.built = map[string]string{}
	}
	b.built[pkg] = out
	return out, nil
}

// ServerEnv is the environment every Charla process gets besides its addresses: no demo
// data, the per-connection rate limit lifted (the figures are capacity, not policy),
// quiet logs. Other settings keep their defaults.
var ServerEnv = []string{"DEMO=false", "RATE_LIMIT=100000", "RATE_BURST=100000", "LOG_LEVEL=warn"}

// OneProcess builds and starts cmd/charla on databaseURL and waits for /ready.
func OneProcess(ctx context.Context, b *Builder, databaseURL, prefix string, dbPIDs []int, concurrency int) (*Running, error) {
	bin, err := b.Build(ctx, "./cmd/charla")
	if err != nil {
		return nil, err
	}
	edgeAddr, rpcAddr, err := freeAddr(), freeAddr(), nil
	env := append([]string{"EDGE_ADDR=" + edgeAddr, "RPC_ADDR=" + rpcAddr, "DATABASE_URL=" + databaseURL}, ServerEnv...)
	r := &Running{
		Target: bench.Target{
			Name: "charla", Edges: []string{"ws://" + edgeAddr + "/ws"}, DBPIDs: dbPIDs,
			Prov: provision.NewRPC("http://"+rpcAddr, "http://"+rpcAddr, prefix, "", concurrency),
		},
		Describe: "cmd/charla, " + strings.Join(redactEnv(env), " "),
	}
	p, err := startProcess(b.Dir, "charla", bin, env)
	if err != nil {
		return nil, err
	}
	r.Closers = append(r.Closers, p.stop)
	r.PIDs = []int{p.pid}
	r.Procs = []soak.Proc{{Name: "charla", PID: p.pid, Role: soak.Server, MetricsURL: "http://" + edgeAddr + "/metrics", Log: filepath.Join(b.Dir, "charla.log")}}
	if err := waitReady(ctx, p, "http://"+edgeAddr+"/ready", filepath.Join(b.Dir, "charla.log")); err != nil {
		r.Close()
		return nil, err
	}
	return r, nil
}

// Apart builds and starts the four services and edges edges, as deploy/run-apart.sh does
// (on databaseURL, busURL and the event log's stream eventsStream, see FreshStream), on
// free ports, and waits for every edge's /ready.
func Apart(ctx context.Context, b *Builder, databaseURL, busURL, eventsStream string, edges int, prefix string, dbPIDs []int, concurrency int) (*Running, error) {
	services := []struct{ pkg, name, urlVar string }{
		{"./profilesvc/cmd/profilesvc", "profilesvc", "PROFILE_URL"},
		{"./chatsvc/cmd/chatsvc", "chatsvc", "CHAT_URL"},
		{"./notifysvc/cmd/notifysvc", "notifysvc", "NOTIFY_URL"},
		{"./presencesvc/cmd/presencesvc", "presencesvc", "PRESENCE_URL"},
	}
	common := append([]string{"DATABASE_URL=" + databaseURL, "BUS_URL=" + busURL, "EVENTS_STREAM=" + eventsStream}, ServerEnv...)
	addrs := map[string]string{}
	for _, s := range services {
		addrs[s.name] = freeAddr()
		common = append(common, s.urlVar+"="+addrs[s.name])
	}
	r := &Running{
		Target: bench.Target{
			Name: "charla", DBPIDs: dbPIDs,
			Prov: provision.NewRPC("http://"+addrs["profilesvc"], "http://"+addrs["chatsvc"], prefix, "", concurrency),
		},
		Describe: fmt.Sprintf("four services and %d edges apart, %s", edges, strings.Join(redactEnv(common), " ")),
	}
	for _, s := range services {
		bin, err := b.Build(ctx, s.pkg)
		if err != nil {
			r.Close()
			return nil, err
		}
		p, err := startProcess(b.Dir, s.name, bin, append([]string{"RPC_ADDR=" + addrs[s.name]}, common...))
		if err != nil {
			r.Close()
			return nil, err
		}
		r.Closers = append(r.Closers, p.stop)
		r.PIDs = append(r.PIDs, p.pid)
		r.Procs = append(r.Procs, soak.Proc{Name: s.name, PID: p.pid, Role: soak.Server, MetricsURL: "http://" + addrs[s.name] + "/metrics", Log: filepath.Join(b.Dir, s.name+".log")})
	}
	bin, err := b.Build(ctx, "./edge/cmd/edge")
	if err != nil {
		r.Close()
		return nil, err
	}
	for i := range edges {
		addr := freeAddr()
		name := fmt.Sprintf("edge%d", i+1)
		p, err := startProcess(b.Dir, name, bin, append([]string{"EDGE_ADDR=" + addr}, common...))
		if err != nil {
			r.Close()
			return nil, err
		}
		r.Closers = append(r.Closers, p.stop)
		r.PIDs = append(r.PIDs, p.pid)
		r.Procs = append(r.Procs, soak.Proc{Name: name, PID: p.pid, Role: soak.Server, MetricsURL: "http://" + addr + "/metrics", Log: filepath.Join(b.Dir, name+".log")})
		r.Edges = append(r.Edges, "ws://"+addr+"/ws")
		if err := waitReady(ctx, p, "http://"+addr+"/ready", filepath.Join(b.Dir, name+".log")); err != nil {
			r.Close()
			return nil, err
		}
	}
	return r, nil
}

// FreshMySQL creates a database with a random name on the server of adminDSN (a
// go-sql-driver DSN, such as "root@tcp(127.0.0.1:3306)/") and returns its DATABASE_URL and
// a function that drops it.
func FreshMySQL(ctx context.Context, adminDSN string) (url string, drop func(), err error) {
	cfg, err := mysql.ParseDSN(adminDSN)
	if err != nil {
		return "", nil, fmt.Errorf("mysql dsn %q: %w", adminDSN, err)
	}
	cfg.DBName = ""
	admin, err := sql.Open("mysql", cfg.FormatDSN())
	if err != nil {
		return "", nil, fmt.Errorf("open mysql: %w", err)
	}
	var suffix [4]byte
	_, _ = rand.Read(suffix[:])
	name := "charla_load_" + hex.EncodeToString(suffix[:])
	if _, err := admin.ExecContext(ctx, "CREATE DATABASE `"+name+"` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"); err != nil {
		admin.Close()
		return "", nil, fmt.Errorf("create database %s: %w", name, err)
	}
	drop = func() {
		defer admin.Close()
		if _, err := admin.Exec("DROP DATABASE IF EXISTS `" + name + "`"); err != nil {
			fmt.Fprintf(os.Stderr, "charla-load: drop database %s: %v\n", name, err)
		}
	}
	cfg.DBName = name
	return "mysql://" + cfg.FormatDSN(), drop, nil
}

// FreshStream names a JetStream stream for one run's user event log (EVENTS_STREAM): each
// run starts with empty histories, not the ones earlier runs left on the same NATS server
// under the same user ids. The services create the stream; drop deletes it.
func FreshStream(natsURL string) (name string, drop func()) {
	var suffix [4]byte
	_, _ = rand.Read(suffix[:])
	name = "CHARLA_LOAD_" + strings.ToUpper(hex.EncodeToString(suffix[:]))
	return name, func() {
		nc, err := nats.Connect(natsURL, nats.Timeout(5*time.Second))
		if err != nil {
			fmt.Fprintf(os.Stderr, "charla-load: delete stream %s: %v\n", name, err)
			return
		}
		defer nc.Close()
		js, err := jetstream.New(nc)
		if err == nil {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			err = js.DeleteStream(ctx, name)
		}
		if err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
			fmt.Fprintf(os.Stderr, "charla-load: delete stream %s: %v\n", name, err)
		}
	}
}

// MySQLServerPIDs finds the database server's processes (mariadbd, else mysqld).
func MySQLServerPIDs() ([]int, error) {
	for _, name := range []string{"mariadbd", "mysqld"} {
		pids, err := procfs.FindByName(name)
		if err != nil {
			return nil, err
		}
		if len(pids) > 0 {
			return pids, nil
		}
	}
	return nil, errors.New("no mariadbd or mysqld process found in /proc")
}

// freeAddr returns a loopback address with a port free at the time of the call.
func freeAddr() string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "127.0.0.1:0"
	}
	defer l.Close()
	return l.Addr().String()
}

// proc is a started process; done is closed once it has exited and been reaped.
type proc struct {
	cmd  *exec.Cmd
	pid  int
	name string
	done chan struct{}
}

// watch reaps cmd in the background and closes onExit (if any) after.
func watch(cmd *exec.Cmd, onExit io.Closer) *proc {
	p := &proc{cmd: cmd, pid: cmd.Process.Pid, name: filepath.Base(cmd.Path), done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		if onExit != nil {
			onExit.Close()
		}
		close(p.done)
	}()
	return p
}

func startProcess(dir, name, bin string, env []string) (*proc, error) {
	logf, err := os.Create(filepath.Join(dir, name+".log"))
	if err != nil {
		return nil, fmt.Errorf("%s: log file: %w", name, err)
	}
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("%s: start: %w", name, err)
	}
	p := watch(cmd, logf)
	p.name = name
	return p, nil
}

// stop sends SIGTERM and waits up to 20 s for the process to exit, then kills it.
func (p *proc) stop() {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(20 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// waitReady polls url until it answers 200, the process exits or readyTimeout passes.
func waitReady(ctx context.Context, p *proc, url, logPath string) error {
	deadline := time.Now().Add(readyTimeout)
	for time.Now().Before(deadline) {
		select {
		case <-p.done:
			return fmt.Errorf("%s exited before ready; its log:\n%s", p.name, tail(logPath))
		default:
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-time.After(100 * time.Millisecond):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return fmt.Errorf("%s not ready within %v at %s; its log:\n%s", p.name, readyTimeout, url, tail(logPath))
}

func tail(path string) string {
	b, _ := os.ReadFile(path)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// redactEnv hides passwords in DATABASE_URL for the report.
func redactEnv(env []string) []string {
	out := make([]string, len(env))
	for i, kv := range env {
		out[i] = kv
		if v, ok := strings.CutPrefix(kv, "DATABASE_URL=mysql://"); ok {
			if cfg, err := mysql.ParseDSN(v); err == nil && cfg.Passwd != "" {
				cfg.Passwd = "***"
				out[i] = "DATABASE_URL=mysql://" + cfg.FormatDSN()
			}
		}
	}
	return out
}
