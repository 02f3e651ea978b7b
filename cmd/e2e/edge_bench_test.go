package e2e

import (
	"testing"

	"github.com/gorilla/websocket"

	"github.com/charla/charla/edge"
)

// BenchmarkHandshake measures authenticated WebSocket handshakes per second against the
// real system (profile service over loopback Connect, SQLite): dial, upgrade, close.
// "cached" reuses one token (the edge's token cache answers after the first lookup);
// "uncached" disables the cache, so every handshake costs a ResolveSession call and its
// database read. Presence Connect/Disconnect calls made for each connection load the same
// machine too.
func BenchmarkHandshake(b *testing.B) {
	for _, bc := range []struct {
		name string
		ttl  int // 0: default cache; -1: no cache
	}{{"cached", 0}, {"uncached", -1}} {
		b.Run(bc.name, func(b *testing.B) {
			sys := startBenchSystem(b, func(c *edge.Config) {
				if bc.ttl < 0 {
					c.AuthCacheTTL = -1
				}
			})
			u := sys.NewUser(b, "hb")
			url := sys.URL(u.Token)
			dialer := *websocket.DefaultDialer
			b.SetParallelism(8) // handshakes are latency-bound: keep both cores busy
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					ws, _, err := dialer.Dial(url, nil)
					if err != nil {
						b.Error(err)
						return
					}
					ws.Close()
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "handshakes/s")
		})
	}
}
