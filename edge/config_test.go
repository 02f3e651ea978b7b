package edge

import (
	"testing"
	"time"

	"github.com/charla/charla/edge/internal/hub"
	"github.com/charla/charla/shared/config"
)

func TestDeclareConfig(t *testing.T) {
	t.Parallel()
	l := config.New("test")
	get := DeclareConfig(l)
	err := l.Parse([]string{"-allowed-origins", "https://a.example, http://b.example:8080", "-ping-period", "20s", "-pong-wait", "30s",
		"-max-message-size", "8192", "-rate-limit", "5", "-rate-burst", "7", "-edge-presence-grace", "1s", "-request-timeout", "3s"})
	if err != nil {
		t.Fatal(err)
	}
	c := get()
	h := c.Hub
	if len(h.AllowedOrigins) != 2 || h.AllowedOrigins[1] != "http://b.example:8080" || h.PingPeriod != 20*time.Second ||
		h.PongWait != 30*time.Second || h.MaxMessageSize != 8192 || h.RateLimit != 5 || h.RateBurst != 7 ||
		c.PresenceGrace != time.Second || c.RequestTimeout != 3*time.Second || h.SendChannelBuffer != 256 || c.DrainTimeout != 10*time.Second {
		t.Errorf("got %+v", c)
	}
	if err := c.check(); err != nil {
		t.Errorf("check: %v", err)
	}
}

func TestConfigRejects(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{"-allowed-origins", "not a url"},
		{"-allowed-origins", "ftp://x.example"},
		{"-ping-period", "0s"},
		{"-max-message-size", "10"},
		{"-rate-limit", "-1"},
		{"-edge-addr", "nowhere"},
	} {
		l := config.New("test")
		DeclareConfig(l)
		if err := l.Parse(args); err == nil {
			t.Errorf("%v: accepted", args)
		}
	}
	for _, c := range []Config{
		{Hub: hubWith(60*time.Second, 60*time.Second)},
		{Hub: hubWith(time.Second, 2*time.Second), PresenceGrace: 4 * time.Second},
	} {
		if err := c.check(); err == nil {
			t.Errorf("%+v: accepted", c)
		}
	}
}

func hubWith(ping, pong time.Duration) (h hubConfig) {
	h.PingPeriod, h.PongWait = ping, pong
	return h
}

type hubConfig = hub.Config
