package hub

import (
	"bufio"
	"bytes"
	"io"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/charla/charla/shared/waittest"
)

// BenchmarkMessageRoundTrip measures the hub's per-message path over loopback:
// a client message is read by the read pump, ProcessClientMessage enqueues a
// reply, the write pump writes it and the client reads it. window is how many
// messages the client keeps in flight. Allocations include the client's
// (gorilla's reader and writer on the client side), not only the hub's. The
// rate limit is disabled: it is not what is measured. "parked" parks the
// connection after every message (ParkAfter 1 ns): each message is read by a
// reader that the poller started.
func BenchmarkMessageRoundTrip(b *testing.B) {
	for _, bc := range []struct {
		window int
		parked bool
	}{{1, false}, {64, false}, {1, true}} {
		window := bc.window
		name := "window=" + strconv.Itoa(window)
		if bc.parked {
			name += "/parked"
		}
		b.Run(name, func(b *testing.B) {
			cfg := DefaultConfig()
			cfg.RateLimit = 0
			if bc.parked {
				cfg.ParkAfter = time.Nanosecond
			}
			reply := []byte(`{"pid":"c-1","type":"SERVER_ACK","payload":{}}`)
			ts := newTestServer(b, cfg, Callbacks[testUser]{
				AuthenticateAndGetUserData: authByQuery,
				ProcessClientMessage: func(c *Connection[testUser], msg []byte) {
					_ = c.Send(reply)
				},
			})
			c := ts.dial(b, 1)
			msg := []byte(`{"type":"PING","pid":"c-1","payload":{}}`)
			tokens := make(chan struct{}, window)
			writeErr := make(chan error, 1)
			b.ReportAllocs()
			b.SetBytes(int64(len(msg) + len(reply)))
			b.ResetTimer()
			go func() {
				for range b.N {
					tokens <- struct{}{}
					if err := c.WriteMessage(websocket.TextMessage, msg); err != nil {
						writeErr <- err
						return
					}
				}
				writeErr <- nil
			}()
			for range b.N {
				_, r, err := c.NextReader()
				if err != nil {
					b.Fatal(err)
				}
				if _, err := io.Copy(io.Discard, r); err != nil {
					b.Fatal(err)
				}
				<-tokens
			}
			b.StopTimer()
			if err := <-writeErr; err != nil {
				b.Fatal(err)
			}
		})
	}
}

// BenchmarkHandshake measures complete WebSocket handshakes through the hub
// (origin check, a trivial auth callback, upgrade, registration, pumps) and the
// client's close, with client and server in this process over loopback.
func BenchmarkHandshake(b *testing.B) {
	ts := newTestServer(b, DefaultConfig(), Callbacks[testUser]{AuthenticateAndGetUserData: authByQuery})
	b.SetParallelism(8) // handshakes are latency-bound: keep both cores busy
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			c, _, err := websocket.DefaultDialer.Dial(ts.url+"?user=1", nil)
			if err != nil {
				b.Error(err)
				return
			}
			c.Close()
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "handshakes/s")
}

// BenchmarkIdleConnectionMemory holds N idle connections (HUB_MEM_CONNS,
// default 2000) from a client in a separate process (memclient) and reports
// the hub process's growth per connection: Go heap in use, goroutine stacks,
// RSS as measured, and RSS after returning free pages to the OS (the steady
// state once the handshake garbage has been collected and scavenged). Run it
// with -benchtime=1x: every iteration opens and drops N connections.
// HUB_MEM_PROFILE=path also writes a heap profile while they are held.
func BenchmarkIdleConnectionMemory(b *testing.B) {
	n := 2000
	if s := os.Getenv("HUB_MEM_CONNS"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v <= 0 {
			b.Fatalf("HUB_MEM_CONNS=%q: want a positive integer", s)
		}
		n = v
	}
	if os.Getenv("HUB_MEM_PROFILE") != "" {
		old := runtime.MemProfileRate
		runtime.MemProfileRate = 1
		b.Cleanup(func() { runtime.MemProfileRate = old })
	}
	bin := filepath.Join(b.TempDir(), "memclient")
	if out, err := exec.Command("go", "build", "-o", bin, "./memclient").CombinedOutput(); err != nil {
		b.Fatalf("go build memclient: %v\n%s", err, out)
	}

	m := NewConnectionManager(DefaultConfig(), Callbacks[testUser]{AuthenticateAndGetUserData: authByQuery}, nil)
	srv := httptest.NewServer(m)
	b.Cleanup(srv.Close)
	url := "ws" + strings.TrimPrefix(srv.URL, "http")

	var heap, stack, rss, rssFreed float64
	for range b.N {
		runtime.GC()
		debug.FreeOSMemory()
		before := readMem(b)

		cmd := exec.Command(bin, "-url", url, "-n", strconv.Itoa(n))
		stdin, err := cmd.StdinPipe()
		if err != nil {
			b.Fatal(err)
		}
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			b.Fatal(err)
		}
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		line, err := bufio.NewReader(stdout).ReadString('\n')
		if err != nil || !strings.HasPrefix(line, "ready") {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			b.Fatalf("memclient: %q, %v", line, err)
		}
		waittest.Until(b, "all connections registered", func() bool { return m.GetActiveConnectionsCount() == n })
		if m.poller != nil {
			// Idle means parked: no goroutine reads them (ParkAfter after the handshake).
			waittest.Until(b, "all connections parked", func() bool { return m.ParkedCount() == n })
		}

		runtime.GC()
		held := readMem(b)
		if path := os.Getenv("HUB_MEM_PROFILE"); path != "" {
			writeHeapProfile(b, path)
		}
		debug.FreeOSMemory()
		freed := readMem(b)

		heap = float64(held.heap-before.heap) / float64(n)
		stack = float64(held.stack-before.stack) / float64(n)
		rss = float64(held.rss-before.rss) / float64(n)
		rssFreed = float64(freed.rss-before.rss) / float64(n)

		_ = stdin.Close()
		if err := cmd.Wait(); err != nil {
			b.Fatalf("memclient: %v", err)
		}
		waittest.Until(b, "all connections gone", func() bool { return m.GetActiveConnectionsCount() == 0 })
	}
	b.ReportMetric(float64(n), "conns")
	b.ReportMetric(heap, "heap-B/conn")
	b.ReportMetric(stack, "stack-B/conn")
	b.ReportMetric(rss, "rss-B/conn")
	b.ReportMetric(rssFreed, "rss-freed-B/conn")
}

// writeHeapProfile saves the in-use heap while the connections are held, to
// see what an idle connection is made of (go tool pprof -sample_index=inuse_space).
func writeHeapProfile(tb testing.TB, path string) {
	tb.Helper()
	f, err := os.Create(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
		tb.Fatal(err)
	}
}

type memSample struct{ heap, stack, rss int64 }

func readMem(tb testing.TB) memSample {
	tb.Helper()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		tb.Fatal(err)
	}
	var rss int64
	for line := range bytes.Lines(status) {
		if f := strings.Fields(string(line)); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			rss = kb << 10
		}
	}
	return memSample{heap: int64(ms.HeapInuse), stack: int64(ms.StackInuse), rss: rss}
}
