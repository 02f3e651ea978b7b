package bench

import (
	"context"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/charla/charla/cmd/internal/load/client"
	"github.com/charla/charla/cmd/internal/load/provision"
	"github.com/charla/charla/cmd/internal/load/relay"
	"github.com/charla/charla/cmd/internal/load/wire"
)

// relayTarget serves a relay in this process and describes it as a target.
func relayTarget(t *testing.T, ro relay.Options) *Target {
	t.Helper()
	r := relay.New(ro)
	srv := httptest.NewServer(r)
	t.Cleanup(func() { r.Close(); srv.Close() })
	return &Target{
		Name:  "relay",
		Edges: []string{"ws" + strings.TrimPrefix(srv.URL, "http") + "/ws"},
		PIDs:  []int{os.Getpid()},
		Prov:  &provision.Relay{},
	}
}

func testOptions() *Options {
	return &Options{Dialer: client.NewDialer(2), Concurrency: 8}
}

// TestChatCountsLoss runs the chat mode for a second against a relay that drops every
// 10th message: exactly a tenth is reported lost, the rest delivered with latencies.
func TestChatCountsLoss(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		drop int64
		soak bool
	}{{"lossless", 0, false}, {"every 10th dropped", 10, true}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			target := relayTarget(t, relay.Options{DropEvery: tc.drop})
			cfg := ChatConfig{Pairs: 4, Rates: []int{60, 100}, Phase: 500 * time.Millisecond, Grace: 3 * time.Second, Workers: 2}
			if tc.soak {
				cfg.SoakRate, cfg.Soak = 40, 700*time.Millisecond
			}
			res, err := RunChat(context.Background(), testOptions(), target, cfg)
			if err != nil {
				t.Fatal(err)
			}
			phases := res.Phases
			switch {
			case len(res.Phases) != 2:
				t.Fatalf("%d phases, want 2", len(res.Phases))
			case !tc.soak && res.Soak != nil:
				t.Fatalf("soak %+v, want none", res.Soak)
			case tc.soak && (res.Soak == nil || res.Soak.Rate != 40 || res.Soak.Duration != 700*time.Millisecond):
				t.Fatalf("soak %+v, want 40 msg/s for 700ms", res.Soak)
			case tc.soak:
				phases = append(phases, *res.Soak)
			}
			// The relay counts the warm-up messages too.
			sentBefore := res.Warmup
			if res.Warmup < 4 {
				t.Errorf("%d warm-up messages, want at least one per pair", res.Warmup)
			}
			for _, ph := range phases {
				if ph.Sent == 0 || ph.Sent+ph.Unsent+ph.WriteErrs != ph.Offered {
					t.Errorf("rate %d: sent %d + unsent %d + write errors %d, want offered %d (and > 0 sent)", ph.Rate, ph.Sent, ph.Unsent, ph.WriteErrs, ph.Offered)
				}
				// The relay drops its n-th message for every n divisible by drop, counting
				// across phases.
				wantLost := int64(0)
				if tc.drop > 0 {
					wantLost = (sentBefore+ph.Sent)/tc.drop - sentBefore/tc.drop
				}
				sentBefore += ph.Sent
				if ph.Lost != wantLost || ph.Delivered != ph.Sent-wantLost {
					t.Errorf("rate %d: lost %d delivered %d of %d, want lost %d", ph.Rate, ph.Lost, ph.Delivered, ph.Sent, wantLost)
				}
				// The relay acknowledges the messages it drops: each is lost acknowledged.
				if want := (Outcome{Delivered: ph.Sent - wantLost, AckedLost: wantLost}); ph.Outcome != want {
					t.Errorf("rate %d: outcome %+v, want %+v", ph.Rate, ph.Outcome, want)
				}
				if ph.Late != 0 || ph.Dups != 0 || ph.Dropped != 0 {
					t.Errorf("rate %d: %d late, %d duplicates, %d connections closed, want none", ph.Rate, ph.Late, ph.Dups, ph.Dropped)
				}
				if ph.Acks != ph.Sent || len(ph.AckErrors) != 0 {
					t.Errorf("rate %d: %d acks and errors %v, want %d acks and no error", ph.Rate, ph.Acks, ph.AckErrors, ph.Sent)
				}
				if ph.P50 > ph.P99 || ph.P99 > ph.Max || ph.Max <= 0 {
					t.Errorf("rate %d: p50 %v p99 %v max %v, want 0 < p50 <= p99 <= max", ph.Rate, ph.P50, ph.P99, ph.Max)
				}
			}
		})
	}
}

func TestIdleAndStorm(t *testing.T) {
	t.Parallel()
	target := relayTarget(t, relay.Options{})
	res, err := RunIdle(context.Background(), testOptions(), target, IdleConfig{
		Levels: []int{5, 12}, ConnsPerUser: 2, Storm: 8, StormTimeout: time.Minute,
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Users != 6 {
		t.Errorf("users = %d, want 6 (12 connections, 2 each)", res.Users)
	}
	if len(res.Levels) != 2 || res.Levels[0].Conns != 5 || res.Levels[1].Conns != 12 || res.Levels[1].Added != 7 {
		t.Fatalf("levels = %+v, want 5 then 12 (7 added)", res.Levels)
	}
	for _, l := range res.Levels {
		if l.PerSec <= 0 || l.RSS <= 0 {
			t.Errorf("level %d: %v handshakes/s, RSS %d, want both > 0", l.Conns, l.PerSec, l.RSS)
		}
	}
	if res.Storm == nil || res.Storm.Clients != 8 || res.Storm.Took <= 0 {
		t.Errorf("storm = %+v, want 8 clients back", res.Storm)
	}
}

func TestStormOnlyRampsWithoutLevels(t *testing.T) {
	t.Parallel()
	target := relayTarget(t, relay.Options{})
	res, err := RunIdle(context.Background(), testOptions(), target, IdleConfig{Storm: 3, StormTimeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Levels) != 0 || res.Storm == nil || res.Storm.Clients != 3 {
		t.Errorf("levels %+v storm %+v, want no level and a storm of 3", res.Levels, res.Storm)
	}
}

func TestMessageFrameRoundTrip(t *testing.T) {
	t.Parallel()
	b := appendMessage(nil, 1234, 77)
	f, err := wire.Scan(b)
	if err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	if string(f.Type) != wire.TypeSend || string(f.PID) != "c1234" {
		t.Errorf("type %q pid %q", f.Type, f.PID)
	}
	if seq, ok := seqOf(wire.Field(f.Payload, "clientMessageId"), "L"); !ok || seq != 1234 {
		t.Errorf("clientMessageId seq = %d, %v; want 1234", seq, ok)
	}
	if seq, ok := seqOf(wire.Field(f.Payload, "text"), "load#"); !ok || seq != 1234 {
		t.Errorf("text seq = %d, %v; want 1234", seq, ok)
	}
	if got := string(wire.Field(f.Payload, "toUserId")); got != "77" {
		t.Errorf("toUserId = %s, want 77", got)
	}
}

// TestSoakSettleTellsLateFromLost: after the soak the tool waits (SoakSettle) for late
// deliveries before it sorts the soak's messages, so one the relay forwards late counts
// as late and one it drops as acknowledged and lost.
func TestSoakSettleTellsLateFromLost(t *testing.T) {
	t.Parallel()
	const dropEvery, lateEvery = 7, 5
	target := relayTarget(t, relay.Options{DropEvery: dropEvery, LateEvery: lateEvery, Late: 800 * time.Millisecond})
	cfg := ChatConfig{Pairs: 4, Rates: []int{40}, Phase: 300 * time.Millisecond, Grace: 200 * time.Millisecond, Workers: 2,
		SoakRate: 40, Soak: 600 * time.Millisecond, SoakSettle: 3 * time.Second}
	res, err := RunChat(context.Background(), testOptions(), target, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if res.Soak == nil {
		t.Fatal("no soak phase")
	}
	// The relay numbers every message it relays, the warm-up's and the first phase's too.
	first := res.Warmup + res.Phases[0].Sent + 1
	var want Outcome
	for n := first; n < first+res.Soak.Sent; n++ {
		switch {
		case n%dropEvery == 0:
			want.AckedLost++
		case n%lateEvery == 0:
			want.Late++
		default:
			want.Delivered++
		}
	}
	if want.AckedLost == 0 || want.Late == 0 {
		t.Fatalf("the soak's %d messages hold no dropped or no late one: make it longer", res.Soak.Sent)
	}
	if res.Soak.Outcome != want {
		t.Fatalf("soak outcome %+v, want %+v", res.Soak.Outcome, want)
	}
}
