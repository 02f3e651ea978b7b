package apart

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"connectrpc.com/connect"

	chatv1 "github.com/charla/charla/proto/gen/chat/v1"
	profilev1 "github.com/charla/charla/proto/gen/profile/v1"
	"github.com/charla/charla/shared/peers"
	"github.com/charla/charla/shared/sqldb/dbtest"
	"github.com/charla/charla/shared/tcpproxy"
)

// The fault drill's load and pacing. Each phase is short so that the whole drill stays
// within about five minutes on a shared 2-core machine.
const (
	drillPairs     = 8                      // sender and recipient on different edges
	drillSendPause = 120 * time.Millisecond // between one sender's messages
	drillReadEvery = 500 * time.Millisecond // a recipient's MESSAGES_READ and GET_NOTIFICATIONS, in turn
	drillLookEvery = time.Second            // a sender's GET_MY_PROFILE, between two messages
	drillChurners  = 2                      // contacts of every pair's users who come and go
	drillChurnOn   = 300 * time.Millisecond // a churner's connection lasts this long
	drillGrace     = 2 * time.Second        // EDGE_PRESENCE_GRACE (the default)
	drillDrain     = 5 * time.Second        // DRAIN_TIMEOUT of the edges
	drillWarm      = 2 * time.Second        // load before each fault
	drillAfter     = 2 * time.Second        // load after recovery, before the checks
	drillRetry     = 200 * time.Millisecond // a client's pause before sending again after 503 or 504
	drillGiveUp    = 60 * time.Second       // a send not acknowledged by then fails the drill
	drillResume    = 20000                  // RESUME_MAX_EVENTS: the whole history stays held
	svcShutdown    = 10 * time.Second       // a service's own bound on its drain (shared/svc)
)

// Fault lengths: issue 15's (item 3). APART_DRILL_SCALE multiplies them (0.5 for a quicker
// drill, 2 for longer faults); slowBy stays as it is.
const (
	killFor     = 3 * time.Second        // a killed process is started again after this
	refuseFor   = 10 * time.Second       // the database refuses connections
	freezeFor   = 25 * time.Second       // the database accepts connections but no byte flows
	slowFor     = 30 * time.Second       // the database answers slowBy later
	slowBy      = 200 * time.Millisecond // added to every database round trip
	natsDownFor = 10 * time.Second       // NATS is stopped
	cutFor      = 20 * time.Second       // edge A cannot reach the profile service
)

// requestTimeout is the edges' REQUEST_TIMEOUT (the default): a fault that holds requests
// (fault.holds) longer than this may answer 504 (docs/protocol.md §3.5), as the 25 s
// database freeze does.
const requestTimeout = 20 * time.Second

// Resources back to their baseline after each fault: within settleLimit, every process
// that ran through the whole phase must hold at most allowance(baseline) goroutines and
// open files. The allowance is loose enough for what comes and goes with the load (a
// database pool of up to 16 idle connections, each with the driver's goroutine; HTTP/2
// connections to peers) and tight enough that a leak per request, connection or retry
// shows after a fault (each fault makes hundreds of them).
const settleLimit = 20 * time.Second

func allowance(base int) int { return base + base/4 + 20 }

// dpair is a pair of the drill: its sender sends without end while a phase runs.
type dpair struct {
	*pair
	next       int       // number of the next message; only the sender goroutine uses it
	ackedStart time.Time // when the newest acknowledged send began (under pair.mu)
}

// phaseStats is what the clients saw during one phase; safe for concurrent use.
type phaseStats struct {
	mu           sync.Mutex
	codes        map[string]int // "SEND_CHAT_MESSAGE 503" → count of error replies
	failures     []string
	acked        int
	maxWait      time.Duration // the longest send, from its first try to its ack
	churnCycles  int
	churnRefused int
}

func (s *phaseStats) fail(format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failures = append(s.failures, fmt.Sprintf(format, args...))
}

func (s *phaseStats) code(typ string, code int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.codes[fmt.Sprintf("%s %d", typ, code)]++
}

// fault is one fault of the drill: inject starts it, it holds for lasts, end ends it (a
// restart, a restore) and returns when the faulty part is back.
type fault struct {
	name     string
	baseline bool // no fault: no error reply at all is allowed
	inject   func()
	lasts    time.Duration
	end      func()
	// holds: requests wait for the faulty part rather than fail at once (a frozen
	// database, NATS down), so when the fault lasts REQUEST_TIMEOUT or longer, 504 is
	// allowed besides 503.
	holds bool
	// needs, when set, is the one request type the fault may fail (with 503) and must:
	// every other request is answered without error, and at least one of these is refused
	// (the fault did bite).
	needs string
	// slower, when set, is a delay the fault adds to every send: at least one send must
	// have taken that long (the fault did bite).
	slower time.Duration
}

// faultReport is one row of the drill's table.
type faultReport struct {
	name                                     string
	held, recovered, maxWait                 time.Duration
	acked, resent, reconnects                int
	unavailable, churnRefused, churnCycles   int
	refused                                  map[int]int
	lost, twice, orphans, undelivered, flaps int
	overdue                                  int // 504s of a fault held longer than REQUEST_TIMEOUT
	internal                                 int
	growth                                   usageGrowth // the largest growth over the baselines once settled
}

// drill is the deployment under faults and its clients.
type drill struct {
	t         *failureRecorder
	ctx       context.Context
	dep       *deployment
	nats      *natsServer
	db        *tcpproxy.Proxy
	profileA  []*tcpproxy.Proxy // edge A's way to the profile replicas
	rpc       *peers.Clients
	edgeAddrs []string
	edges     []*proc
	edgeEnv   []map[string]string
	svc       map[string]*proc // "chatsvc-2" → its process
	svcEnv    map[string]map[string]string
	pairs     []*dpair
	churn     []user
	devices   []*device        // the pairs' devices
	base      map[string]usage // each process's baseline, by name (a restart takes a new one)
}

// TestDrillFaults is the fault drill of issue 15 (item 3) on the apart deployment with real
// processes: two edges, two replicas of every service, every process given both replicas
// of each service as a comma list (CHAT_URL=a,b: rpc.Balancer), MySQL reached through a
// TCP fault proxy, edge A reaching the profile replicas through a fault proxy each, and an
// embedded NATS. Pairs of users chat across the edges (sender on one, recipient on the
// other) while recipients mark messages read, senders read their profile, recipients
// their notifications, and churners (contacts of every pair's users) come and go. One
// fault at a time, each with recovery and checks before the next:
//
//   - none (the baseline);
//   - kill -9 of one chat replica, of one presence replica, of edge A, each started again
//     after killFor (edge A's clients resume on edge B, then move back);
//   - SIGTERM of one replica of each service and of edge A: each must drain and exit 0,
//     and is started again at once;
//   - the database refusing connections for refuseFor, frozen (connections accepted, no
//     byte forwarded) for freezeFor, slowBy slower on every round trip for slowFor;
//   - NATS down for natsDownFor;
//   - edge A cut off from the profile service (both replicas refuse it) for cutFor.
//
// After each: no acknowledged message lost or stored twice, nothing stored that was not
// acknowledged, every acknowledged message delivered to its recipient (who stays connected
// somewhere, resuming per docs/protocol.md §8), every device's sequenced events exactly
// once and in order, no error reply but 503 (no 500; 504 only from a fault that holds
// requests REQUEST_TIMEOUT or longer) and no handshake refused with 500, no user_offline
// for a pair's user (none ever disconnected for longer than the grace), no event chatsvc
// dropped because it could not publish it, and every process that ran through the fault
// back within allowance of its baseline of goroutines and open files. Each fault's
// figures are logged, then a table of them all (RELIABILITY.md).
//
// APART_DRILL_SCALE multiplies the faults' lengths; APART_DRILL_ONLY and
// APART_DRILL_REPEAT run some of them several times.
func TestDrillFaults(tt *testing.T) {
	t := recordFailures(tt)
	if os.Getenv("CHARLA_DRILL") != "1" {
		t.Skip("the fault drill runs with CHARLA_DRILL=1 (make drill): it builds the commands and runs 10 processes")
	}
	scale := 1.0
	if v := os.Getenv("APART_DRILL_SCALE"); v != "" {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || f <= 0 {
			t.Fatalf("APART_DRILL_SCALE=%q: want a positive number", v)
		}
		scale = f
	}
	dur := func(d time.Duration) time.Duration { return time.Duration(float64(d) * scale) }
	began := time.Now()
	d := startDrill(t)
	t.Logf("deployment ready after %v: edges %v, NATS %s, database through %s, edge A's profile through %s and %s",
		time.Since(began).Round(time.Millisecond), d.edgeAddrs, d.nats.addr, d.db.Addr(), d.profileA[0].Addr(), d.profileA[1].Addr())

	kill := func(name string) fault {
		return fault{name: "kill -9 " + strings.TrimSuffix(name[:len(name)-2], "svc") + " replica",
			inject: func() { d.svc[name].kill() }, lasts: dur(killFor), end: func() { d.restartService(name) }}
	}
	term := func(name string) fault {
		return fault{name: "SIGTERM " + strings.TrimSuffix(name[:len(name)-2], "svc") + " replica",
			inject: func() { d.terminate(d.svc[name], svcShutdown) }, end: func() { d.restartService(name) }}
	}
	faults := []fault{
		{name: "none (baseline)", baseline: true, inject: func() {}, end: func() {}},
		kill("chatsvc-2"),
		kill("presencesvc-1"),
		{name: "kill -9 edge A", inject: func() { d.edges[0].kill() }, lasts: dur(killFor), end: d.restartEdgeA},
		term("chatsvc-1"),
		term("profilesvc-2"),
		term("notifysvc-1"),
		term("presencesvc-2"),
		{name: "SIGTERM edge A", inject: func() { d.terminate(d.edges[0], drillDrain) }, end: d.restartEdgeA},
		{name: "database refusing", inject: d.db.Refuse, lasts: dur(refuseFor), end: func() {
			if err := d.db.Restore(); err != nil {
				t.Fatalf("restore the database proxy: %v", err)
			}
		}},
		{name: "database frozen", inject: d.db.Freeze, lasts: dur(freezeFor), end: d.db.Thaw, holds: true},
		{name: fmt.Sprintf("database %v slower", slowBy), inject: func() { d.db.Slow(slowBy) }, lasts: dur(slowFor), end: d.db.Fast, slower: slowBy},
		{name: "NATS down", inject: d.nats.stop, lasts: dur(natsDownFor), end: d.nats.start, holds: true},
		{name: "edge A cut off from profile", inject: func() {
			for _, p := range d.profileA {
				p.Refuse()
			}
		}, lasts: dur(cutFor), end: func() {
			for _, p := range d.profileA {
				if err := p.Restore(); err != nil {
					t.Fatalf("restore edge A's way to profile: %v", err)
				}
			}
		}, needs: "GET_MY_PROFILE"},
	}
	// APART_DRILL_ONLY (a part of a fault's name) and APART_DRILL_REPEAT (a count) run
	// some faults, several times: to chase one, or to check the fix of a known bug.
	only := os.Getenv("APART_DRILL_ONLY")
	repeat := 1
	if v := os.Getenv("APART_DRILL_REPEAT"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("APART_DRILL_REPEAT=%q: want a positive count", v)
		}
		repeat = n
	}
	var reports []faultReport
	for rep := range repeat {
		for _, f := range faults {
			if f.baseline && rep > 0 {
				continue
			}
			if only != "" && !f.baseline && !strings.Contains(f.name, only) {
				continue
			}
			reports = append(reports, d.phase(f))
		}
	}
	var b strings.Builder
	b.WriteString("| fault | held | recovered after | longest send | acked | 503 replies | 504 replies | refused handshakes | resent sends | reconnects | churn refused/cycles | lost | stored twice | undelivered | 500s | flaps | goroutines vs baseline | open files vs baseline |\n")
	b.WriteString("|---|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---|\n")
	for _, r := range reports {
		fmt.Fprintf(&b, "| %s | %v | %v | %v | %d | %d | %d | %s | %d | %d | %d/%d | %d | %d | %d | %d | %d | %s | %s |\n",
			r.name, r.held.Round(100*time.Millisecond), r.recovered.Round(10*time.Millisecond), r.maxWait.Round(10*time.Millisecond),
			r.acked, r.unavailable, r.overdue, fmtStatuses(r.refused), r.resent, r.reconnects, r.churnRefused, r.churnCycles,
			r.lost, r.twice+r.orphans, r.undelivered, r.internal, r.flaps, r.growth.goroutines, r.growth.files)
	}
	t.Logf("fault drill done in %v (scale %v):\n%s", time.Since(began).Round(time.Second), scale, b.String())
}

// startDrill starts the deployment, provisions the users and connects the devices.
func startDrill(t *failureRecorder) *drill {
	t.Helper()
	dbURL, dbProxy := dbtest.NewCuttableMySQL(t) // skips without MYSQL_TEST_DSN
	binaries(t)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	nats := startNATS(t)
	d := &drill{
		t: t, ctx: ctx, nats: nats, db: dbProxy,
		svc: map[string]*proc{}, svcEnv: map[string]map[string]string{}, base: map[string]usage{},
		dep: newDeployment(t, map[string]string{
			"DATABASE_URL":       dbURL,
			"BUS_URL":            nats.url(),
			"INTERNAL_API_TOKEN": internalToken,
			"LOG_FORMAT":         "text",
			"RESUME_MAX_EVENTS":  strconv.Itoa(drillResume),
		}),
	}
	names := []string{"profilesvc", "chatsvc", "notifysvc", "presencesvc"}
	addrs := map[string][2]string{}
	for _, n := range names {
		addrs[n] = [2]string{freeAddr(t), freeAddr(t)}
	}
	list := func(n string) string { return addrs[n][0] + "," + addrs[n][1] }
	urls := peers.URLs{Chat: list("chatsvc"), Profile: list("profilesvc"), Notify: list("notifysvc"), Presence: list("presencesvc")}
	peerEnv := func() map[string]string {
		return map[string]string{"CHAT_URL": urls.Chat, "PROFILE_URL": urls.Profile, "NOTIFY_URL": urls.Notify, "PRESENCE_URL": urls.Presence}
	}
	// Replica 1 of each service first (it migrates the database), then replica 2.
	for i := range 2 {
		for _, n := range names {
			name := fmt.Sprintf("%s-%d", n, i+1)
			env := peerEnv()
			env["RPC_ADDR"] = addrs[n][i]
			d.svcEnv[name] = env
			d.svc[name] = d.dep.start(name, n, env)
		}
		for _, n := range names {
			name := fmt.Sprintf("%s-%d", n, i+1)
			d.dep.waitTCP(d.svc[name], addrs[n][i])
		}
	}
	// Edge A reaches each profile replica through a proxy of its own, which the drill can
	// cut without touching the other processes' way to profile.
	var viaProxies []string
	for _, target := range addrs["profilesvc"] {
		p, err := tcpproxy.New(target)
		if err != nil {
			t.Fatalf("proxy to %s: %v", target, err)
		}
		t.Cleanup(func() { p.Close() })
		d.profileA = append(d.profileA, p)
		viaProxies = append(viaProxies, p.Addr())
	}
	d.edgeAddrs = []string{freeAddr(t), freeAddr(t)}
	for i, name := range []string{"edge-a", "edge-b"} {
		env := peerEnv()
		if i == 0 {
			env["PROFILE_URL"] = strings.Join(viaProxies, ",")
		}
		env["EDGE_ADDR"] = d.edgeAddrs[i]
		env["EDGE_PRESENCE_GRACE"] = drillGrace.String()
		env["DRAIN_TIMEOUT"] = drillDrain.String()
		env["RATE_LIMIT"] = "1000"
		env["RATE_BURST"] = "1000"
		d.edgeEnv = append(d.edgeEnv, env)
		d.edges = append(d.edges, d.dep.start(name, "edge", env))
	}
	for i, e := range d.edges {
		d.dep.waitReady(e, d.edgeAddrs[i], startLimit)
	}
	d.rpc = peers.New(urls, internalToken, nil)
	t.Cleanup(func() { d.rpc.Close() })

	newUser := func(name string) user {
		t.Helper()
		res, err := d.rpc.Profile.CreateUser(ctx, connect.NewRequest(&profilev1.CreateUserRequest{
			UserName: name, FirstName: "F" + name, LastName: "L" + name, Email: name + "@example.com",
		}))
		if err != nil {
			t.Fatalf("create user %s: %v", name, err)
		}
		sess, err := d.rpc.Profile.CreateSession(ctx, connect.NewRequest(&profilev1.CreateSessionRequest{UserId: res.Msg.GetUser().GetId()}))
		if err != nil {
			t.Fatalf("session of %s: %v", name, err)
		}
		return user{id: res.Msg.GetUser().GetId(), name: name, token: sess.Msg.GetToken()}
	}
	contact := func(a, b user) int64 {
		t.Helper()
		res, err := d.rpc.Chat.CreateContact(ctx, connect.NewRequest(&chatv1.CreateContactRequest{UserId: a.id, OtherUserId: b.id}))
		if err != nil {
			t.Fatalf("contact %s-%s: %v", a.name, b.name, err)
		}
		return res.Msg.GetChatId()
	}
	for i := range drillPairs {
		p := &dpair{pair: &pair{sender: newUser(fmt.Sprintf("drill_s%d", i)), recipient: newUser(fmt.Sprintf("drill_r%d", i)), senderEdge: i % 2, acked: map[string]string{}}}
		p.chatID = contact(p.sender, p.recipient)
		d.pairs = append(d.pairs, p)
	}
	for j := range drillChurners {
		u := newUser(fmt.Sprintf("drill_x%d", j))
		for _, p := range d.pairs {
			contact(u, p.sender)
			contact(u, p.recipient)
		}
		d.churn = append(d.churn, u)
	}
	for _, p := range d.pairs {
		for _, side := range []struct {
			u    user
			edge int
			dst  **device
		}{{p.sender, p.senderEdge, &p.senderDev}, {p.recipient, 1 - p.senderEdge, &p.recipDev}} {
			dev, err := newDevice(ctx, side.u.name, side.u.id, side.u.token, d.edgeAddrs, side.edge, false)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(dev.stop)
			*side.dst = dev
			d.devices = append(d.devices, dev)
		}
	}
	return d
}

// restartService starts the service process name again, on its address, and waits until
// it listens.
func (d *drill) restartService(name string) {
	d.t.Helper()
	svc := strings.TrimSuffix(strings.TrimSuffix(name, "-1"), "-2")
	p := d.dep.start(name, svc, d.svcEnv[name])
	d.svc[name] = p
	d.dep.waitTCP(p, d.svcEnv[name]["RPC_ADDR"])
}

// terminate sends SIGTERM to p and waits until it has drained and exited, which it must
// do within limit (its own bound on draining) and with status 0.
func (d *drill) terminate(p *proc, limit time.Duration) {
	d.t.Helper()
	start := time.Now()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		d.t.Fatalf("SIGTERM %s: %v", p.name, err)
	}
	select {
	case <-p.done:
	case <-time.After(limit + startLimit):
		d.t.Fatalf("%s did not exit within %v of SIGTERM\n%s", p.name, limit+startLimit, tail(p.logPath, 40))
	}
	if p.err != nil {
		d.t.Errorf("%s exited with %v after SIGTERM, want 0\n%s", p.name, p.err, tail(p.logPath, 40))
	}
	d.t.Logf("%s drained and exited (%v) %v after SIGTERM", p.name, p.err, time.Since(start).Round(time.Millisecond))
}

// restartEdgeA starts edge A again and moves back the devices that prefer it (after a
// kill -9 or a SIGTERM of edge A they resumed on edge B).
func (d *drill) restartEdgeA() {
	d.t.Helper()
	d.edges[0] = d.dep.start("edge-a", "edge", d.edgeEnv[0])
	d.dep.waitReady(d.edges[0], d.edgeAddrs[0], startLimit)
	for _, dev := range d.devices {
		dev.mu.Lock()
		pref := dev.preferred
		dev.mu.Unlock()
		if pref != 0 {
			continue
		}
		n := dev.connCount()
		dev.moveTo(0)
		waitFor(d.t, deliverLimit, dev.name+" back on edge A", func() bool {
			c := dev.snapshot()
			return len(c) > n && c[len(c)-1].edge == d.edgeAddrs[0]
		})
	}
}

// procs are the processes that should be running.
func (d *drill) procs() []*proc {
	out := append([]*proc(nil), d.edges...)
	for _, p := range d.svc {
		out = append(out, p)
	}
	return out
}

// flaps counts the user_offline events a pair's device got about its partner, who never
// went offline.
func (d *drill) flaps() int {
	n := 0
	for _, p := range d.pairs {
		n += p.senderDev.keys()[fmt.Sprintf("presence:%d:user_offline", p.recipient.id)]
		n += p.recipDev.keys()[fmt.Sprintf("presence:%d:user_offline", p.sender.id)]
	}
	return n
}

func (d *drill) connections() int {
	n := 0
	for _, dev := range d.devices {
		n += dev.connCount()
	}
	return n
}

func (d *drill) resent() int {
	n := 0
	for _, p := range d.pairs {
		p.mu.Lock()
		n += p.resent
		p.mu.Unlock()
	}
	return n
}

// phase runs the load, injects f after drillWarm, ends it, waits for recovery, runs the
// load drillAfter more, stops it and checks everything, the processes' resources last.
func (d *drill) phase(f fault) faultReport {
	t := d.t
	t.Helper()
	st := &phaseStats{codes: map[string]int{}}
	refusedHandshakes.take()
	conns0, resent0, flaps0 := d.connections(), d.resent(), d.flaps()
	publishFailed0 := d.logCount("chatsvc", publishFailed)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for _, p := range d.pairs {
		// One requester per device: the edge serves a connection's frames one at a
		// time, so a second requester's frame could wait behind one held for up to
		// REQUEST_TIMEOUT before its own REQUEST_TIMEOUT starts.
		wg.Add(2)
		go func() { defer wg.Done(); d.sendLoop(p, stop, st) }()
		go func() {
			defer wg.Done()
			d.askLoop(p.recipDev, []request{
				{"MESSAGES_READ", map[string]any{"chatId": strconv.FormatInt(p.chatID, 10)}, "SERVER_ACK"},
				{"GET_NOTIFICATIONS", map[string]any{"limit": 1}, "NOTIFICATION_LIST"},
			}, drillReadEvery, stop, st)
		}()
	}
	for j, u := range d.churn {
		wg.Add(1)
		go func() { defer wg.Done(); d.churnLoop(j, u, stop, st) }()
	}
	stopped := false
	stopLoad := func() {
		if !stopped {
			stopped = true
			close(stop)
			wg.Wait()
		}
	}
	defer stopLoad() // also when a check fails the test

	time.Sleep(drillWarm)
	injected := time.Now()
	f.inject()
	time.Sleep(f.lasts)
	f.end()
	ended := time.Now()
	recovered := d.waitRecovered(ended, st, recoverLimit)
	time.Sleep(drillAfter)
	stopLoad()

	r := faultReport{name: f.name, held: ended.Sub(injected), recovered: recovered}
	st.mu.Lock()
	failures := st.failures
	r.acked, r.maxWait, r.churnCycles, r.churnRefused = st.acked, st.maxWait, st.churnCycles, st.churnRefused
	codes := st.codes
	st.mu.Unlock()
	if len(failures) > 0 {
		t.Fatalf("%s: the clients failed:\n%s", f.name, strings.Join(failures, "\n"))
	}
	r.refused = refusedHandshakes.take()
	for k, n := range codes {
		typ, _, _ := strings.Cut(k, " ")
		switch {
		case f.needs != "" && typ != f.needs:
			// Only the requests that need the missing service may fail.
		case strings.HasSuffix(k, " 503") && !f.baseline:
			r.unavailable += n
			continue
		case strings.HasSuffix(k, " 504") && f.holds && f.lasts >= requestTimeout:
			r.overdue += n // §3.5: a request the fault held past REQUEST_TIMEOUT
			continue
		}
		if strings.HasSuffix(k, " 500") {
			r.internal += n
		}
		t.Errorf("%s: %d error replies %s (allowed: 503 during a fault, only to %s; 504 only when a fault holds requests longer than REQUEST_TIMEOUT)",
			f.name, n, k, orAny(f.needs))
	}
	if f.needs != "" && codes[f.needs+" 503"] == 0 {
		t.Errorf("%s: no %s answered 503: the fault did not bite (replies %s)", f.name, f.needs, fmtCodes(codes))
	}
	if f.slower > 0 && r.maxWait < f.slower {
		t.Errorf("%s: the longest send took %v, less than the %v the fault adds to each: the fault did not bite", f.name, r.maxWait, f.slower)
	}
	if n := r.refused[http.StatusInternalServerError]; n > 0 {
		r.internal += n
		t.Errorf("%s: %d handshakes refused with 500", f.name, n)
	}
	d.dep.checkAlive(d.procs()...)

	// Every acknowledged message delivered once to its recipient, every acknowledged
	// message stored once, every device's events exactly once and in order.
	r.undelivered = d.waitDelivered(f)
	if n := d.logCount("chatsvc", publishFailed) - publishFailed0; n > 0 {
		t.Errorf("%s: chatsvc dropped %d events it could not publish (%s)", f.name, n, publishFailed)
	}
	r.lost, r.twice, r.orphans = d.readBack()
	if r.lost+r.twice+r.orphans > 0 {
		t.Errorf("%s: %d acknowledged messages not stored, %d stored twice, %d stored but never acknowledged", f.name, r.lost, r.twice, r.orphans)
	}
	r.flaps = d.flaps() - flaps0
	if r.flaps > 0 {
		t.Errorf("%s: %d user_offline events about a pair's user, who stayed connected", f.name, r.flaps)
	}
	r.reconnects, r.resent = d.connections()-conns0, d.resent()-resent0
	t.Logf("%s: held %v, recovered %v after its end; %d messages acked, longest send %v; 503 replies %d, 504 replies past REQUEST_TIMEOUT %d (%s); handshakes refused %s; %d sends resent, %d reconnects; churn %d cycles, %d refused; lost %d, stored twice %d, never acked %d, never delivered %d, 500s %d, flaps %d",
		f.name, r.held.Round(time.Millisecond), r.recovered.Round(time.Millisecond), r.acked, r.maxWait.Round(time.Millisecond),
		r.unavailable, r.overdue, fmtCodes(codes), fmtStatuses(r.refused), r.resent, r.reconnects, r.churnCycles, r.churnRefused,
		r.lost, r.twice, r.orphans, r.undelivered, r.internal, r.flaps)
	if t.Failed() {
		t.FailNow()
	}
	checkSeqs(t, d.rpc, d.devices, f.name)
	r.growth = d.settle(f.name)
	return r
}

func orAny(typ string) string {
	if typ == "" {
		return "any request"
	}
	return typ
}

// waitRecovered waits until both edges are ready and every sender has had a send that
// began after ended acknowledged; it returns how long that took. A /ready answering
// neither 200 nor 503 fails the drill.
func (d *drill) waitRecovered(ended time.Time, st *phaseStats, limit time.Duration) time.Duration {
	d.t.Helper()
	for {
		ok := true
		for i, addr := range d.edgeAddrs {
			switch code := ready(d.ctx, addr); code {
			case http.StatusOK:
			case http.StatusServiceUnavailable, 0:
				ok = false
			default:
				d.t.Errorf("edge %d /ready answered %d", i, code)
				ok = false
			}
		}
		for _, p := range d.pairs {
			p.mu.Lock()
			if p.ackedStart.Before(ended) {
				ok = false
			}
			p.mu.Unlock()
		}
		if ok {
			return time.Since(ended)
		}
		d.dep.checkAlive(d.procs()...)
		if time.Since(ended) > limit {
			st.mu.Lock()
			failures := strings.Join(st.failures, "\n")
			st.mu.Unlock()
			d.t.Fatalf("not recovered within %v of the fault's end (edges ready and a send of every sender acknowledged); client failures:\n%s", limit, failures)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// sendLoop sends p's messages until stop, each retried with its clientMessageId after a
// 503 or 504 until acknowledged, as a client would; between two messages, once every
// drillLookEvery, the sender reads its profile (GET_MY_PROFILE, not retried).
func (d *drill) sendLoop(p *dpair, stop <-chan struct{}, st *phaseStats) {
	var looked time.Time
	for {
		select {
		case <-stop:
			return
		default:
		}
		m := p.next
		p.next++
		cmid := fmt.Sprintf("%s-%d", p.sender.name, m)
		start := time.Now()
		for {
			f, resent, err := p.senderDev.call("SEND_CHAT_MESSAGE", map[string]any{
				"toUserId": p.recipient.id, "text": fmt.Sprintf("message %d of %s", m, p.sender.name), "clientMessageId": cmid,
			})
			p.mu.Lock()
			p.resent += resent
			p.mu.Unlock()
			if err != nil {
				st.fail("%s: send %s: %v", p.sender.name, cmid, err)
				return
			}
			if f.Type == "SERVER_ACK" {
				var ack struct {
					MessageID       string `json:"messageId"`
					ClientMessageID string `json:"clientMessageId"`
				}
				if err := json.Unmarshal(f.Payload, &ack); err != nil || ack.MessageID == "" || ack.ClientMessageID != cmid {
					st.fail("%s: ack of %s: %s", p.sender.name, cmid, f.Payload)
					return
				}
				p.mu.Lock()
				if prev, ok := p.acked[cmid]; ok && prev != ack.MessageID {
					st.fail("%s: %s acked as %s and as %s", p.sender.name, cmid, prev, ack.MessageID)
				}
				p.acked[cmid] = ack.MessageID
				p.ackedStart = start
				p.mu.Unlock()
				st.mu.Lock()
				st.acked++
				st.maxWait = max(st.maxWait, time.Since(start))
				st.mu.Unlock()
				break
			}
			code := errorCode(f)
			st.code("SEND_CHAT_MESSAGE", code)
			if code != http.StatusServiceUnavailable && code != http.StatusGatewayTimeout {
				st.fail("%s: send %s: %s %s", p.sender.name, cmid, f.Type, f.Payload)
				return
			}
			if time.Since(start) > drillGiveUp {
				st.fail("%s: send %s not acknowledged within %v (last reply %s)", p.sender.name, cmid, drillGiveUp, f.Payload)
				return
			}
			time.Sleep(drillRetry)
		}
		if time.Since(looked) >= drillLookEvery {
			looked = time.Now()
			if !d.ask(p.senderDev, request{"GET_MY_PROFILE", map[string]any{}, "MY_PROFILE_DATA"}, st) {
				return
			}
		}
		select {
		case <-stop:
			return
		case <-time.After(drillSendPause):
		}
	}
}

// request is a frame a device sends now and then, and the type of its answer.
type request struct {
	typ     string
	payload any
	answer  string
}

// askLoop sends reqs from dev in turn, one every period, until stop: a recipient marks its
// chat read (MESSAGE_STATUS_UPDATE read to the sender) and reads its notifications.
func (d *drill) askLoop(dev *device, reqs []request, period time.Duration, stop <-chan struct{}, st *phaseStats) {
	for k := 0; ; k++ {
		select {
		case <-stop:
			return
		case <-time.After(period):
		}
		if !d.ask(dev, reqs[k%len(reqs)], st) {
			return
		}
	}
}

// ask sends r from dev once and counts an error reply (the phase's checks say which are
// allowed). A reply that is neither r's answer nor 503 or 504 fails the drill: ask
// returns false.
func (d *drill) ask(dev *device, r request, st *phaseStats) bool {
	f, _, err := dev.call(r.typ, r.payload)
	if err != nil {
		st.fail("%s: %s: %v", dev.name, r.typ, err)
		return false
	}
	if f.Type != r.answer {
		code := errorCode(f)
		st.code(r.typ, code)
		if code != http.StatusServiceUnavailable && code != http.StatusGatewayTimeout {
			st.fail("%s: %s: %s %s", dev.name, r.typ, f.Type, f.Payload)
			return false
		}
	}
	return true
}

// churnLoop connects churner u now to one edge, now to the other, for drillChurnOn, then
// stays away longer than the presence grace: every pair's users see it come and go. A
// refused connection is counted (the fault may refuse it) and tried again next cycle.
func (d *drill) churnLoop(j int, u user, stop <-chan struct{}, st *phaseStats) {
	for k := 0; ; k++ {
		select {
		case <-stop:
			return
		case <-time.After(drillGrace + time.Second + time.Duration(j)*400*time.Millisecond):
		}
		dev, err := newDevice(d.ctx, u.name, u.id, u.token, d.edgeAddrs, (j+k)%2, true)
		if err != nil {
			st.mu.Lock()
			st.churnRefused++
			st.mu.Unlock()
			continue
		}
		time.Sleep(drillChurnOn)
		dev.stop()
		st.mu.Lock()
		st.churnCycles++
		st.mu.Unlock()
	}
}

// errorCode is an ERROR_NOTIFICATION's code (0 for any other frame).
func errorCode(f frame) int {
	if f.Type != "ERROR_NOTIFICATION" {
		return 0
	}
	var e struct {
		Code int `json:"code"`
	}
	_ = json.Unmarshal(f.Payload, &e)
	return e.Code
}

// undelivered lists the acknowledged messages of p its recipient has not received (by
// clientMessageId), and fails the drill for any it received twice.
func (d *drill) undelivered(p *dpair) []string {
	keys := p.recipDev.keys()
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []string
	for cmid, id := range p.acked {
		switch keys["msg:"+id] {
		case 0:
			out = append(out, cmid)
		case 1:
		default:
			d.t.Errorf("%s got %s (%s) %d times", p.recipient.name, id, cmid, keys["msg:"+id])
		}
	}
	sort.Strings(out)
	return out
}

// waitDelivered waits up to deliverLimit until every acknowledged message has reached its
// recipient, and fails the drill for each that has not, saying whether it is in the
// recipient's event history at all (if not, it was stored and acknowledged but its event
// never published). It returns how many never arrived.
func (d *drill) waitDelivered(f fault) (total int) {
	d.t.Helper()
	phase := f.name
	deadline := time.Now().Add(deliverLimit)
	for _, p := range d.pairs {
		missing := d.undelivered(p)
		for len(missing) > 0 && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
			missing = d.undelivered(p)
		}
		if len(missing) == 0 {
			continue
		}
		total += len(missing)
		h, err := readHistory(d.ctx, d.rpc, p.recipient.id)
		for _, cmid := range missing {
			p.mu.Lock()
			id := p.acked[cmid]
			p.mu.Unlock()
			where := "its NEW_CHAT_MESSAGE is in the recipient's history, yet was never delivered"
			if err != nil {
				where = fmt.Sprintf("the recipient's history could not be read: %v", err)
			} else if !historyHas(h, "msg:"+id) {
				where = "its NEW_CHAT_MESSAGE is not in the recipient's history: stored and acknowledged, never published"
			}
			d.t.Errorf("%s: %s never got acknowledged message %s (id %s) within %v: %s", phase, p.recipient.name, cmid, id, deliverLimit, where)
		}
	}
	return total
}

// publishFailed is what chatsvc logs when it drops an event it could not publish.
const publishFailed = `msg="publish chat event"`

// logCount counts the lines of the logs of the processes whose name starts with prefix
// (every one the deployment started, restarted ones included) that contain pattern.
func (d *drill) logCount(prefix, pattern string) int {
	d.dep.mu.Lock()
	paths := map[string]bool{}
	for _, p := range d.dep.procs {
		if strings.HasPrefix(p.name, prefix) {
			paths[p.logPath] = true
		}
	}
	d.dep.mu.Unlock()
	n := 0
	for path := range paths {
		n += strings.Count(readFile(path), pattern)
	}
	return n
}

func historyHas(h history, key string) bool {
	for _, r := range h.records {
		if r.Key == key {
			return true
		}
	}
	return false
}

// readBack reads every pair's chat through the chat service and compares it with what was
// acknowledged: lost (acknowledged, not stored under its id), twice (a clientMessageId
// stored more than once), orphans (stored, never acknowledged).
func (d *drill) readBack() (lost, twice, orphans int) {
	d.t.Helper()
	for _, p := range d.pairs {
		stored := map[string][]int64{} // clientMessageId → ids
		var before int64               // 0: no cursor, the newest page; then older pages
		for {
			var res *connect.Response[chatv1.GetMessagesResponse]
			var err error
			for try := 0; try < 3; try++ { // GetMessages is idempotent; the balancer retries too
				res, err = d.rpc.Chat.GetMessages(d.ctx, connect.NewRequest(&chatv1.GetMessagesRequest{
					UserId: p.sender.id, ChatId: p.chatID, BeforeId: before, Limit: 200,
				}))
				if err == nil {
					break
				}
				time.Sleep(500 * time.Millisecond)
			}
			if err != nil {
				d.t.Fatalf("read back the chat of %s: %v", p.sender.name, err)
			}
			msgs := res.Msg.GetMessages() // oldest first
			for _, m := range msgs {
				stored[m.GetClientMessageId()] = append(stored[m.GetClientMessageId()], m.GetId())
			}
			if !res.Msg.GetHasMore() || len(msgs) == 0 {
				break
			}
			before = msgs[0].GetId()
		}
		p.mu.Lock()
		for cmid, id := range p.acked {
			ids := stored[cmid]
			if len(ids) == 0 || strconv.FormatInt(ids[0], 10) != id {
				lost++
				d.t.Errorf("%s: %s acknowledged as %s, stored as %v", p.sender.name, cmid, id, ids)
			}
			if len(ids) > 1 {
				twice += len(ids) - 1
			}
		}
		for cmid, ids := range stored {
			if _, ok := p.acked[cmid]; !ok {
				orphans += len(ids)
				d.t.Errorf("%s: %q stored as %v, never acknowledged", p.sender.name, cmid, ids)
			}
		}
		p.mu.Unlock()
	}
	return lost, twice, orphans
}

func fmtCodes(m map[string]int) string {
	if len(m) == 0 {
		return "none"
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s ×%d", k, m[k])
	}
	return strings.Join(parts, ", ")
}

func fmtStatuses(m map[int]int) string {
	if len(m) == 0 {
		return "none"
	}
	keys := make([]int, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Ints(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%d ×%d", k, m[k])
	}
	return strings.Join(parts, ", ")
}

// usage is what one process holds: its goroutines (go_goroutines on its GET /metrics) and
// its open files (/proc/<pid>/fd), sockets among them (its TCP connections and listeners).
type usage struct {
	pid                        int
	goroutines, files, sockets int
}

func (u usage) String() string {
	return fmt.Sprintf("%d goroutines, %d files (%d sockets)", u.goroutines, u.files, u.sockets)
}

// usageGrowth is how far the processes were above their baselines once settled: the
// largest growth of each kind, with the process ("+3 (chatsvc-1)").
type usageGrowth struct{ goroutines, files string }

// metricsAddr is the address of p's GET /metrics: an edge's EDGE_ADDR, a service's RPC_ADDR.
func (d *drill) metricsAddr(p *proc) string {
	if env, ok := d.svcEnv[p.name]; ok {
		return env["RPC_ADDR"]
	}
	for i, e := range d.edges {
		if e == p {
			return d.edgeAddrs[i]
		}
	}
	d.t.Fatalf("no metrics address for %s", p.name)
	return ""
}

// measure reads p's usage.
func (d *drill) measure(p *proc) (usage, error) {
	u := usage{pid: p.cmd.Process.Pid}
	ctx, cancel := context.WithTimeout(d.ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+d.metricsAddr(p)+"/metrics", nil)
	if err != nil {
		return u, err
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return u, fmt.Errorf("GET /metrics of %s: %w", p.name, err)
	}
	body, err := io.ReadAll(res.Body)
	res.Body.Close()
	if err != nil {
		return u, fmt.Errorf("GET /metrics of %s: %w", p.name, err)
	}
	found := false
	for line := range strings.SplitSeq(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, "go_goroutines "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				return u, fmt.Errorf("go_goroutines of %s: %q: %w", p.name, v, err)
			}
			u.goroutines, found = int(f), true
		}
	}
	if !found {
		return u, fmt.Errorf("no go_goroutines on the /metrics of %s (HTTP %d)", p.name, res.StatusCode)
	}
	dir := fmt.Sprintf("/proc/%d/fd", u.pid)
	fds, err := os.ReadDir(dir)
	if err != nil {
		return u, fmt.Errorf("open files of %s: %w", p.name, err)
	}
	for _, fd := range fds {
		link, err := os.Readlink(filepath.Join(dir, fd.Name()))
		if err != nil {
			continue // closed since ReadDir
		}
		u.files++
		if strings.HasPrefix(link, "socket:") {
			u.sockets++
		}
	}
	return u, nil
}

// settle waits up to settleLimit until every process that ran through the whole phase
// holds at most allowance(its baseline) goroutines and open files, and fails the drill for
// each that does not. A process started during the phase (or not measured yet) gets its
// baseline now, with the load stopped, as every baseline is taken (a restarted one: no
// less than its predecessor's). It returns the largest growths left over the baselines.
func (d *drill) settle(phase string) usageGrowth {
	d.t.Helper()
	start := time.Now()
	for {
		var over, figures []string
		var worstG, worstF, gName, fName = -1 << 31, -1 << 31, "", ""
		for _, p := range d.procs() {
			u, err := d.measure(p)
			if err != nil {
				d.t.Fatalf("%s: %v", phase, err)
			}
			b, ok := d.base[p.name]
			if !ok || b.pid != u.pid {
				// A process just started has not filled its pools yet: its baseline is
				// what it holds now, or what its predecessor held, whichever is more.
				nb := u
				if ok {
					nb.goroutines, nb.files, nb.sockets = max(u.goroutines, b.goroutines), max(u.files, b.files), max(u.sockets, b.sockets)
				}
				d.base[p.name] = nb
				figures = append(figures, fmt.Sprintf("%s: new baseline %v (now %v)", p.name, nb, u))
				continue
			}
			figures = append(figures, fmt.Sprintf("%s: %d/%d goroutines, %d/%d files (%d/%d sockets)",
				p.name, u.goroutines, b.goroutines, u.files, b.files, u.sockets, b.sockets))
			if g := u.goroutines - b.goroutines; g > worstG {
				worstG, gName = g, p.name
			}
			if f := u.files - b.files; f > worstF {
				worstF, fName = f, p.name
			}
			if u.goroutines > allowance(b.goroutines) || u.files > allowance(b.files) {
				over = append(over, fmt.Sprintf("%s: %v, baseline %v, allowed %d goroutines and %d files",
					p.name, u, b, allowance(b.goroutines), allowance(b.files)))
			}
		}
		if len(over) == 0 || time.Since(start) > settleLimit {
			sort.Strings(figures)
			d.t.Logf("%s: resources after %v (now/baseline): %s", phase, time.Since(start).Round(time.Millisecond), strings.Join(figures, "; "))
			if len(over) > 0 {
				d.t.Errorf("%s: not back within the allowance of the baseline %v after the checks:\n%s", phase, settleLimit, strings.Join(over, "\n"))
			}
			var g usageGrowth
			if gName != "" {
				g = usageGrowth{goroutines: fmt.Sprintf("%+d (%s)", worstG, gName), files: fmt.Sprintf("%+d (%s)", worstF, fName)}
			} else {
				g = usageGrowth{goroutines: "baseline", files: "baseline"}
			}
			return g
		}
		// Measured again: a restarted process keeps the baseline just taken.
		time.Sleep(500 * time.Millisecond)
	}
}
