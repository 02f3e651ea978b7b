package hub

import (
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Config holds the limits and timeouts of docs/protocol.md §2.5, §3.6–§3.8.
type Config struct {
	// PingPeriod is how often the server pings a connection. It must be shorter
	// than PongWait so that a healthy client's pong always arrives in time.
	PingPeriod time.Duration
	// PongWait is how long a connection may stay silent (no pong, no message)
	// before it is dropped.
	PongWait time.Duration
	// WriteWait bounds every write to the socket, the close frame included.
	WriteWait time.Duration
	// MaxMessageSize is the largest client message, after reassembly of
	// fragments; a larger one closes the connection with 1009.
	MaxMessageSize int64
	// SendChannelBuffer is how many outgoing messages may wait for a connection;
	// one more closes it with 1008 ("slow consumer").
	SendChannelBuffer int
	// RateLimit is the sustained number of client messages per second per
	// connection, RateBurst the burst on top of it. RateLimit <= 0 disables it.
	RateLimit float64
	RateBurst int
	// MaxRateErrors is how many rate-limit errors a connection may collect within
	// RateErrorWindow; the next one closes it with 1008.
	MaxRateErrors   int
	RateErrorWindow time.Duration
	// AllowedOrigins lists the exact origins (scheme://host[:port]) allowed to
	// connect. Nil or empty applies the same-origin rule (the Origin's host:port
	// equals the request's Host); "*" allows every origin. Requests without an
	// Origin header (non-browser clients) are always allowed.
	AllowedOrigins []string
	// HandshakeTimeout bounds writing the 101 response.
	HandshakeTimeout time.Duration
	// ParkAfter is how long a connection's reader waits for the client's next
	// message before the connection parks: no goroutine reads it until its socket
	// is readable (see doc.go, "Idle connections"). Negative: never park.
	ParkAfter time.Duration
}

// DefaultConfig returns the defaults of docs/protocol.md §2.5 and §3.7.
func DefaultConfig() Config {
	return Config{
		PingPeriod:        54 * time.Second,
		PongWait:          60 * time.Second,
		WriteWait:         15 * time.Second,
		MaxMessageSize:    16384,
		SendChannelBuffer: 256,
		RateLimit:         20,
		RateBurst:         40,
		MaxRateErrors:     100,
		RateErrorWindow:   60 * time.Second,
		HandshakeTimeout:  10 * time.Second,
		ParkAfter:         time.Second,
	}
}

// withDefaults fills zero fields with the defaults, so that a partly filled
// Config (as tests and callers tend to write) is still safe to run.
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.PingPeriod <= 0 {
		c.PingPeriod = d.PingPeriod
	}
	if c.PongWait <= 0 {
		c.PongWait = d.PongWait
	}
	if c.WriteWait <= 0 {
		c.WriteWait = d.WriteWait
	}
	if c.MaxMessageSize <= 0 {
		c.MaxMessageSize = d.MaxMessageSize
	}
	if c.SendChannelBuffer <= 0 {
		c.SendChannelBuffer = d.SendChannelBuffer
	}
	if c.RateBurst <= 0 {
		c.RateBurst = d.RateBurst
	}
	if c.MaxRateErrors <= 0 {
		c.MaxRateErrors = d.MaxRateErrors
	}
	if c.RateErrorWindow <= 0 {
		c.RateErrorWindow = d.RateErrorWindow
	}
	if c.HandshakeTimeout <= 0 {
		c.HandshakeTimeout = d.HandshakeTimeout
	}
	if c.ParkAfter == 0 {
		c.ParkAfter = d.ParkAfter
	}
	return c
}

// originAllowed implements the Origin rule of docs/protocol.md §2.2.
func (c *Config) originAllowed(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	if len(c.AllowedOrigins) == 0 {
		u, err := url.Parse(origin)
		if err != nil {
			return false
		}
		return strings.EqualFold(u.Host, r.Host)
	}
	origin = strings.TrimSuffix(origin, "/")
	for _, o := range c.AllowedOrigins {
		if o == "*" || strings.EqualFold(strings.TrimSuffix(o, "/"), origin) {
			return true
		}
	}
	return false
}
