package edge

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/charla/charla/edge/edgemetrics"
	"github.com/charla/charla/edge/internal/door"
	"github.com/charla/charla/edge/internal/hub"
	"github.com/charla/charla/shared/config"
)

// Config holds the edge's settings. The environment variables, with their defaults (for
// the README):
//
//	EDGE_ADDR            127.0.0.1:8080  public listener: /ws, /health, /ready (and /metrics)
//	ALLOWED_ORIGINS      ""              comma-separated exact origins (scheme://host[:port]);
//	                                     "*" allows all; empty: same origin as the Host header
//	PING_PERIOD          54s             how often the edge pings each connection
//	PONG_WAIT            60s             silence after which a connection is dropped (> PING_PERIOD)
//	WRITE_WAIT           15s             deadline of every socket write
//	MAX_MESSAGE_SIZE     16384           largest client message in bytes (larger: close 1009)
//	SEND_CHANNEL_BUFFER  256             messages queued per connection before it is closed 1008
//	REQUEST_TIMEOUT      20s             deadline of the RPC behind each frame (504 when exceeded)
//	RATE_LIMIT           20              client messages per second per connection
//	RATE_BURST           40              burst above RATE_LIMIT
//	DRAIN_TIMEOUT        10s             how long shutdown waits for connections to close
//	EDGE_PRESENCE_GRACE  2s              wait after a connection closes before telling presence
//	                                     (a page reload does not flap online/offline; ≤ 3s)
//	HANDSHAKE_FAIL_RATE  10              failed handshakes per second per client address before
//	                                     429 (negative: no limit)
//	HANDSHAKE_FAIL_BURST 20              burst of failed handshakes above HANDSHAKE_FAIL_RATE
//	TRUSTED_PROXIES      ""              comma-separated CIDR prefixes of proxies whose
//	                                     X-Forwarded-For names the client address
type Config struct {
	// Addr is EDGE_ADDR, the public listener.
	Addr string
	// Hub holds the connection limits and timeouts of docs/protocol.md §2.5 and §3.7.
	Hub hub.Config
	// RequestTimeout (REQUEST_TIMEOUT) is the deadline of every RPC the edge makes: the
	// one behind each client frame (504 when exceeded, docs/protocol.md §2.5) and its own
	// calls to the services. 0 means DefaultRequestTimeout.
	RequestTimeout time.Duration
	// DrainTimeout bounds Shutdown when its context has no deadline.
	DrainTimeout time.Duration
	// PresenceGrace delays telling presence that a connection closed.
	PresenceGrace time.Duration
	// SessionCheckInterval is how often the sessions of open connections are checked
	// with the profile service (≤ 30 s keeps docs/protocol.md §2.6's 60 s). 0 means 30 s.
	SessionCheckInterval time.Duration
	// AuthCacheTTL is how long a resolved token is reused (≤ 10 s). 0 means the default
	// (5 s); negative disables the cache.
	AuthCacheTTL time.Duration
	// ReceiptInterval is how long delivery receipts gather before a MarkDelivered call.
	// 0 means the default (20 ms). Not an environment setting: tests shorten it.
	ReceiptInterval time.Duration
	// EdgeID identifies this edge process to the presence service; empty means random.
	EdgeID string
	// Door limits failed handshakes per client address (zero: the defaults).
	Door door.Config
	// Metrics records the edge's metrics and spans (edgemetrics.New); nil records nothing.
	Metrics *edgemetrics.Metrics
}

// DefaultRequestTimeout is REQUEST_TIMEOUT's default.
const DefaultRequestTimeout = 20 * time.Second

// DeclareConfig declares the edge's settings on l; the returned function gives their
// values after l.Parse.
func DeclareConfig(l *config.Loader) func() Config {
	d := hub.DefaultConfig()
	addr := l.String("EDGE_ADDR", "127.0.0.1:8080", "public WebSocket and HTTP listener", config.HostPort)
	origins := l.String("ALLOWED_ORIGINS", "", `comma-separated allowed origins ("*" for all; empty: same origin only)`, validateOrigins)
	ping := l.Duration("PING_PERIOD", d.PingPeriod, "how often each connection is pinged")
	pong := l.Duration("PONG_WAIT", d.PongWait, "silence after which a connection is dropped; longer than PING_PERIOD")
	write := l.Duration("WRITE_WAIT", d.WriteWait, "deadline of every socket write")
	maxMsg := l.Int("MAX_MESSAGE_SIZE", int(d.MaxMessageSize), 512, 1<<24, "largest client message in bytes")
	sendBuf := l.Int("SEND_CHANNEL_BUFFER", d.SendChannelBuffer, 1, 1<<16, "messages queued per connection before it is dropped as a slow consumer")
	reqTimeout := l.Duration("REQUEST_TIMEOUT", DefaultRequestTimeout, "deadline of the RPC behind each client frame")
	rateLimit := l.Float("RATE_LIMIT", d.RateLimit, "client messages per second per connection")
	rateBurst := l.Int("RATE_BURST", d.RateBurst, 1, 1<<20, "burst of client messages above RATE_LIMIT")
	drain := l.Duration("DRAIN_TIMEOUT", 10*time.Second, "how long shutdown waits for connections to close")
	grace := l.Duration("EDGE_PRESENCE_GRACE", 2*time.Second, "wait after a connection closes before reporting it to presence (at most 3s)")
	failRate := l.Float("HANDSHAKE_FAIL_RATE", door.DefaultRate, "failed handshakes per second per client address before 429 (negative: no limit)")
	failBurst := l.Int("HANDSHAKE_FAIL_BURST", door.DefaultBurst, 1, 1<<20, "burst of failed handshakes per client address")
	proxies := l.String("TRUSTED_PROXIES", "", "comma-separated CIDR prefixes of proxies whose X-Forwarded-For is believed", func(v string) error {
		_, err := door.ParseTrustedProxies(v)
		return err
	})
	return func() Config {
		h := d
		h.AllowedOrigins = splitOrigins(*origins)
		h.PingPeriod, h.PongWait, h.WriteWait = *ping, *pong, *write
		h.MaxMessageSize = int64(*maxMsg)
		h.SendChannelBuffer = *sendBuf
		h.RateLimit, h.RateBurst = *rateLimit, *rateBurst
		trusted, _ := door.ParseTrustedProxies(*proxies) // validated above
		return Config{Addr: *addr, Hub: h, RequestTimeout: *reqTimeout, DrainTimeout: *drain, PresenceGrace: *grace,
			Door: door.Config{Rate: *failRate, Burst: *failBurst, TrustedProxies: trusted}}
	}
}

func splitOrigins(v string) []string {
	var out []string
	for _, o := range strings.Split(v, ",") {
		if o = strings.TrimSpace(o); o != "" {
			out = append(out, o)
		}
	}
	return out
}

func validateOrigins(v string) error {
	for _, o := range splitOrigins(v) {
		if o == "*" {
			continue
		}
		u, err := url.Parse(o)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
			return fmt.Errorf("expected origins such as https://chat.example.com or *, got %q", o)
		}
	}
	return nil
}

// check validates what single settings cannot: their relations.
func (c Config) check() error {
	h := c.Hub
	switch {
	case h.PingPeriod > 0 && h.PongWait > 0 && h.PingPeriod >= h.PongWait:
		return errors.New("PING_PERIOD must be shorter than PONG_WAIT")
	case c.PresenceGrace > 3*time.Second:
		return errors.New("EDGE_PRESENCE_GRACE must be at most 3s (docs/protocol.md §5.5)")
	case c.SessionCheckInterval > 30*time.Second:
		return errors.New("session check interval must be at most 30s")
	}
	return nil
}
