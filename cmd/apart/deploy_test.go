package apart

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// commands are the binaries of the apart deployment: name → package, relative to the
// repository root (go.work).
var commands = map[string]string{
	"chatsvc":     "./chatsvc/cmd/chatsvc",
	"profilesvc":  "./profilesvc/cmd/profilesvc",
	"notifysvc":   "./notifysvc/cmd/notifysvc",
	"presencesvc": "./presencesvc/cmd/presencesvc",
	"edge":        "./edge/cmd/edge",
}

var (
	buildOnce sync.Once
	binDir    string // where the binaries are
	buildErr  error
)

// binaries builds the commands once per test binary run into the repository's bin/apart
// (bin/apart-race with the race detector, which they get when the test binary has it: the
// processes are checked too, and the build reuses the packages `go test -race` compiled)
// and returns that directory. go build relinks only what changed.
func binaries(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		root, err := filepath.Abs(filepath.Join("..", ".."))
		if err != nil {
			buildErr = err
			return
		}
		if _, err := os.Stat(filepath.Join(root, "go.work")); err != nil {
			buildErr = fmt.Errorf("repository root with go.work not found at %s: %w", root, err)
			return
		}
		binDir = filepath.Join(root, "bin", "apart")
		args := []string{"build", "-o", binDir + string(os.PathSeparator)}
		if raceEnabled {
			binDir += "-race"
			args = []string{"build", "-race", "-o", binDir + string(os.PathSeparator)}
		}
		if err := os.MkdirAll(binDir, 0o755); err != nil {
			buildErr = err
			return
		}
		for _, pkg := range commands {
			args = append(args, pkg)
		}
		start := time.Now()
		cmd := exec.Command("go", args...)
		cmd.Dir = root
		out, err := cmd.CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go %s: %w\n%s", strings.Join(args, " "), err, out)
			return
		}
		fmt.Fprintf(os.Stderr, "apart: built %d commands into %s in %v\n", len(commands), binDir, time.Since(start).Round(time.Millisecond))
	})
	if buildErr != nil {
		t.Fatalf("build the commands: %v", buildErr)
	}
	return binDir
}

// freeAddr returns a loopback address with a port that was free a moment ago.
func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("find a free port: %v", err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// proc is one running process of the deployment; its stdout and stderr go to logPath.
type proc struct {
	name    string
	logPath string
	cmd     *exec.Cmd
	done    chan struct{} // closed when the process has exited
	err     error         // Wait's answer, set before done is closed
}

// exited reports whether the process has ended.
func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// kill sends SIGKILL (kill -9) and waits for the process to end.
func (p *proc) kill() {
	_ = p.cmd.Process.Kill()
	<-p.done
}

// deployment is the set of processes of one test, with their logs.
type deployment struct {
	t       testing.TB
	bin     string
	logDir  string
	workDir string            // the processes' working directory: empty, so no .env is read
	base    map[string]string // environment every process gets

	mu    sync.Mutex
	procs []*proc
}

// newDeployment prepares a deployment; every process it starts is killed at cleanup, and
// when the test failed the end of each log is printed. APART_LOG_DIR keeps the logs in that
// directory instead of the test's temporary one.
func newDeployment(t testing.TB, base map[string]string) *deployment {
	t.Helper()
	d := &deployment{t: t, bin: binaries(t), logDir: t.TempDir(), workDir: t.TempDir(), base: base}
	if dir := os.Getenv("APART_LOG_DIR"); dir != "" {
		d.logDir = dir
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatalf("APART_LOG_DIR: %v", err)
		}
	}
	t.Cleanup(func() {
		d.mu.Lock()
		procs := d.procs
		d.mu.Unlock()
		for _, p := range procs {
			if !p.exited() {
				p.kill()
			}
		}
		for _, p := range procs {
			for _, bad := range []string{"WARNING: DATA RACE", "panic: ", "fatal error: "} {
				if n := strings.Count(readFile(p.logPath), bad); n > 0 {
					t.Errorf("%s logged %q %d times (%s)", p.name, bad, n, p.logPath)
				}
			}
		}
		if t.Failed() {
			for _, p := range procs {
				t.Logf("---- %s (%s), exit %v, last lines:\n%s", p.name, p.logPath, p.err, tail(p.logPath, 60))
			}
			if r, ok := t.(*failureRecorder); ok {
				t.Logf("==== the drill failed first with: %s", r.firstFailure())
			}
		}
	})
	return d
}

// start runs command bin as name with the base environment plus env.
func (d *deployment) start(name, bin string, env map[string]string) *proc {
	d.t.Helper()
	logPath := filepath.Join(d.logDir, name+".log")
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		d.t.Fatalf("log file of %s: %v", name, err)
	}
	defer f.Close() // the child has its own descriptor
	merged := map[string]string{}
	for k, v := range d.base {
		merged[k] = v
	}
	for k, v := range env {
		merged[k] = v
	}
	keys := make([]string, 0, len(merged))
	for k := range merged {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	cmd := exec.Command(filepath.Join(d.bin, bin))
	cmd.Dir = d.workDir
	for _, k := range keys {
		cmd.Env = append(cmd.Env, k+"="+merged[k])
	}
	cmd.Stdout, cmd.Stderr = f, f
	fmt.Fprintf(f, "==== %s: %s %s\n", time.Now().Format(time.RFC3339Nano), bin, strings.Join(cmd.Env, " "))
	if err := cmd.Start(); err != nil {
		d.t.Fatalf("start %s: %v", name, err)
	}
	p := &proc{name: name, logPath: logPath, cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	d.mu.Lock()
	d.procs = append(d.procs, p)
	d.mu.Unlock()
	return p
}

// checkAlive fails the test when a process that should run has ended.
func (d *deployment) checkAlive(ps ...*proc) {
	d.t.Helper()
	for _, p := range ps {
		if p.exited() {
			d.t.Fatalf("%s exited: %v\n%s", p.name, p.err, tail(p.logPath, 40))
		}
	}
}

// waitTCP waits until addr accepts connections (a service listens once it has migrated
// its tables and opened its bus), failing when p ends first.
func (d *deployment) waitTCP(p *proc, addr string) {
	d.t.Helper()
	deadline := time.Now().Add(startLimit)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return
		}
		d.checkAlive(p)
		if time.Now().After(deadline) {
			d.t.Fatalf("%s not listening on %s within %v: %v\n%s", p.name, addr, startLimit, err, tail(p.logPath, 40))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// ready returns the status code of an edge's GET /ready (0 when it does not answer).
func ready(ctx context.Context, edgeAddr string) int {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+edgeAddr+"/ready", nil)
	if err != nil {
		return 0
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0
	}
	res.Body.Close()
	return res.StatusCode
}

// waitReady waits until the edge p on addr answers /ready with 200, within limit.
func (d *deployment) waitReady(p *proc, addr string, limit time.Duration) time.Duration {
	d.t.Helper()
	start := time.Now()
	for {
		if ready(context.Background(), addr) == http.StatusOK {
			return time.Since(start)
		}
		d.checkAlive(p)
		if time.Since(start) > limit {
			d.t.Fatalf("%s on %s not ready within %v\n%s", p.name, addr, limit, tail(p.logPath, 40))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// readFile returns a file's content ("" when it cannot be read).
func readFile(path string) string {
	b, _ := os.ReadFile(path)
	return string(b)
}

// tail returns the last n lines of a file.
func tail(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return err.Error()
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if len(lines) > 4*n {
			lines = lines[len(lines)-n:]
		}
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// natsServer is an embedded NATS server with JetStream on a fixed port and store, so the
// test can stop it and start it again as the same server.
type natsServer struct {
	t     testing.TB
	addr  string
	store string
	srv   *server.Server
}

// startNATS starts an embedded NATS server with JetStream, shut down at cleanup.
func startNATS(t testing.TB) *natsServer {
	t.Helper()
	n := &natsServer{t: t, addr: freeAddr(t), store: t.TempDir()}
	n.start()
	t.Cleanup(n.stop)
	return n
}

// url is the server's client URL (BUS_URL).
func (n *natsServer) url() string { return "nats://" + n.addr }

// start starts the server on its address and store.
func (n *natsServer) start() {
	n.t.Helper()
	host, port, err := net.SplitHostPort(n.addr)
	if err != nil {
		n.t.Fatal(err)
	}
	var p int
	if _, err := fmt.Sscan(port, &p); err != nil {
		n.t.Fatal(err)
	}
	srv, err := server.NewServer(&server.Options{
		ServerName: "charla-apart", Host: host, Port: p,
		JetStream: true, StoreDir: n.store, NoLog: true, NoSigs: true,
	})
	if err != nil {
		n.t.Fatalf("embedded NATS: %v", err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(startLimit) {
		n.t.Fatalf("embedded NATS on %s not ready within %v", n.addr, startLimit)
	}
	n.srv = srv
}

// stop shuts the server down and waits until it has.
func (n *natsServer) stop() {
	if n.srv == nil {
		return
	}
	n.srv.Shutdown()
	n.srv.WaitForShutdown()
	n.srv = nil
}

// failureRecorder is a testing.TB that remembers its first failure, so the deployment can
// repeat it after the processes' logs: CI shows only the end of the output, and the logs
// printed at cleanup would otherwise push the reason out of sight.
type failureRecorder struct {
	*testing.T
	mu    sync.Mutex
	first string
}

// recordFailures wraps t.
func recordFailures(t *testing.T) *failureRecorder { return &failureRecorder{T: t} }

func (r *failureRecorder) note(msg string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.first == "" {
		r.first = msg
	}
}

// firstFailure is the first message given to Error, Errorf, Fatal or Fatalf, or "".
func (r *failureRecorder) firstFailure() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.first
}

func (r *failureRecorder) Errorf(format string, args ...any) {
	r.T.Helper()
	r.note(fmt.Sprintf(format, args...))
	r.T.Errorf(format, args...)
}

func (r *failureRecorder) Error(args ...any) {
	r.T.Helper()
	r.note(fmt.Sprint(args...))
	r.T.Error(args...)
}

func (r *failureRecorder) Fatalf(format string, args ...any) {
	r.T.Helper()
	r.note(fmt.Sprintf(format, args...))
	r.T.Fatalf(format, args...)
}

func (r *failureRecorder) Fatal(args ...any) {
	r.T.Helper()
	r.note(fmt.Sprint(args...))
	r.T.Fatal(args...)
}
