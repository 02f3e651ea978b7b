package door

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"sync"
	"testing"
	"time"
)

// clock is a settable time source.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// from is a handshake from remote, carrying the X-Forwarded-For lines xff.
func from(remote string, xff ...string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "/ws", nil)
	r.RemoteAddr = remote
	for _, v := range xff {
		r.Header.Add("X-Forwarded-For", v)
	}
	return r
}

func TestBudgetPerAddress(t *testing.T) {
	t.Parallel()
	c := &clock{t: time.Unix(1_700_000_000, 0)}
	d := New(Config{Rate: 10, Burst: 20, Now: c.now})
	a, b := from("192.0.2.1:5000"), from("192.0.2.2:5000")
	for i := range 20 {
		if !d.Allowed(a) {
			t.Fatalf("failure %d of a burst of 20 refused", i+1)
		}
		d.Failed(a)
	}
	if d.Allowed(a) {
		t.Fatal("21st attempt after 20 failures allowed, want refused")
	}
	if !d.Allowed(b) {
		t.Fatal("another address refused, want its own budget")
	}
	if d.Allowed(from("192.0.2.1:6000")) {
		t.Fatal("the same address from another port allowed, want refused")
	}
	c.add(100 * time.Millisecond) // one failure's worth at 10/s
	if !d.Allowed(a) {
		t.Fatal("refused after the budget refilled by one, want allowed")
	}
	d.Failed(a)
	if d.Allowed(a) {
		t.Fatal("allowed after spending the refilled unit, want refused")
	}
	// Entries whose budget refilled are dropped.
	c.add(time.Hour)
	d.Failed(b)
	if got := d.Len(); got != 1 {
		t.Errorf("entries after an hour: got %d, want 1 (only b's new one)", got)
	}
}

func TestIPv6CountedPer64(t *testing.T) {
	t.Parallel()
	d := New(Config{Rate: 1, Burst: 1})
	d.Failed(from("[2001:db8:1:2::1]:443"))
	if d.Allowed(from("[2001:db8:1:2:ffff::9]:443")) {
		t.Error("another address of the same /64 allowed, want refused")
	}
	if !d.Allowed(from("[2001:db8:1:3::1]:443")) {
		t.Error("an address of another /64 refused, want allowed")
	}
}

func TestOff(t *testing.T) {
	t.Parallel()
	d := New(Config{Rate: -1})
	r := from("192.0.2.1:1")
	for range 100 {
		d.Failed(r)
	}
	if !d.Allowed(r) || d.Len() != 0 {
		t.Error("a negative rate still limits, want no limit")
	}
}

func TestClientAddr(t *testing.T) {
	t.Parallel()
	trusted, err := ParseTrustedProxies("10.0.0.0/8, 192.168.1.7")
	if err != nil {
		t.Fatal(err)
	}
	d := New(Config{TrustedProxies: trusted})
	for _, tc := range []struct {
		name   string
		remote string
		xff    []string
		want   string
	}{
		{"direct client", "203.0.113.5:1234", nil, "203.0.113.5"},
		{"untrusted peer's header is ignored", "203.0.113.5:1234", []string{"1.2.3.4"}, "203.0.113.5"},
		{"trusted proxy", "10.1.2.3:80", []string{"203.0.113.9"}, "203.0.113.9"},
		{"client-supplied hops before the proxy's are skipped", "10.1.2.3:80", []string{"6.6.6.6, 203.0.113.9"}, "203.0.113.9"},
		{"chain of trusted proxies", "10.1.2.3:80", []string{"203.0.113.9, 192.168.1.7", "10.9.9.9"}, "203.0.113.9"},
		{"trusted proxy without header", "192.168.1.7:80", nil, "192.168.1.7"},
		{"garbage hop stops the walk", "10.1.2.3:80", []string{"203.0.113.9, nonsense"}, "10.1.2.3"},
		{"IPv6 with port in the header", "10.1.2.3:80", []string{"[2001:db8::1]:443"}, "2001:db8::1"},
		{"IPv4-mapped peer", "[::ffff:203.0.113.5]:1234", nil, "203.0.113.5"},
	} {
		got := d.ClientAddr(from(tc.remote, tc.xff...))
		if got != netip.MustParseAddr(tc.want) {
			t.Errorf("%s: got %v, want %s", tc.name, got, tc.want)
		}
	}
}

func TestParseTrustedProxies(t *testing.T) {
	t.Parallel()
	got, err := ParseTrustedProxies(" 10.0.0.1/8 ,fd00::/8, 192.168.1.7,,::1")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"10.0.0.0/8", "fd00::/8", "192.168.1.7/32", "::1/128"}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for i := range want {
		if got[i].String() != want[i] {
			t.Errorf("[%d]: got %v, want %s", i, got[i], want[i])
		}
	}
	for _, bad := range []string{"10.0.0.0/33", "example.com", "10.0.0.0/8, nope"} {
		if _, err := ParseTrustedProxies(bad); err == nil {
			t.Errorf("ParseTrustedProxies(%q) succeeded, want an error", bad)
		}
	}
}
