package apart

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"

	chatv1 "github.com/charla/charla/proto/gen/chat/v1"
	notifyv1 "github.com/charla/charla/proto/gen/notify/v1"
	profilev1 "github.com/charla/charla/proto/gen/profile/v1"
	"github.com/charla/charla/shared/peers"
	"github.com/charla/charla/shared/sqldb"
	"github.com/charla/charla/shared/sqldb/dbtest"
)

// Bounds of the waits; none is a speed assertion but the protocol's own: §8.5's 2 s (the
// cap) and §5's 30 s (a dead edge's users settled).
const (
	startLimit    = 30 * time.Second // a process or NATS starting
	deliverLimit  = 30 * time.Second // events reaching their clients
	recoverLimit  = 40 * time.Second // the edges ready again after NATS is back
	capCloseLimit = 2 * time.Second  // docs/protocol.md §8.5
)

// The load of the drill.
const (
	pairs          = 8                     // sender and recipient on different edges
	messages       = 60                    // per sender before the NATS restart
	duringMessages = 3                     // per sender while NATS is down
	afterMessages  = 10                    // per sender after it
	sendPause      = 40 * time.Millisecond // between one sender's messages
	readEvery      = 250 * time.Millisecond
	notifyEvery    = 80 * time.Millisecond
	churners       = 3           // extra users connecting and disconnecting, contacts of edge A's users
	presenceGrace  = time.Second // EDGE_PRESENCE_GRACE: a client that moves edges does not flap
	internalToken  = "apart-internal-token"
)

// replicaSet is one replica of each service, calling each other.
type replicaSet struct {
	urls  peers.URLs
	procs []*proc
}

func (s replicaSet) env() map[string]string {
	return map[string]string{"CHAT_URL": s.urls.Chat, "PROFILE_URL": s.urls.Profile, "NOTIFY_URL": s.urls.Notify, "PRESENCE_URL": s.urls.Presence}
}

// user is a provisioned user with a session.
type user struct {
	id    int64
	name  string
	token string
}

// pair is a sender and a recipient on different edges.
type pair struct {
	sender, recipient   user
	chatID              int64
	senderEdge          int // 0 = edge A, 1 = edge B; the recipient is on the other
	senderDev, recipDev *device
	mu                  sync.Mutex
	acked               map[string]string // clientMessageId → messageId
	resent              int               // sends repeated on a new connection (same clientMessageId)
}

// TestKillEdgeResumeRestartNATSCap is the drill of issues 11 (item 7) and 15 on the apart
// deployment with real processes: two replicas of every service (set 1 serves edge A, set
// 2 edge B: callers take one URL per service), two edges, MySQL and an embedded NATS.
//
//  1. Pairs of users chat across the edges (sender on one, recipient on the other) while
//     recipients mark messages read, extra users come and go (presence changes for edge
//     A's users) and notifications are created for edge A's users; edge A is killed with
//     SIGKILL mid-load. Its clients resume on edge B. Every client must have seen every
//     sequenced event of its user exactly once, in strictly consecutive seq order across
//     the reconnect (resume "ok"), and every acknowledged message must have reached its
//     recipient.
//  2. Edge A comes back; its clients move back (resume "ok" again). NATS stops for a few
//     seconds (APART_NATS_DOWN, default 3s) while messages are being sent, and starts
//     again on the same port and store: the edges become ready, every message sent
//     meanwhile and after is delivered, and the connected clients' seqs continue without
//     a gap (none of them reconnects). Once presence has reaped the connections the dead
//     edge left, no user of a pair was ever announced offline to its partner.
//  3. The connection cap across edges: 6 connections of one user on A, 5 on B; the oldest
//     is closed with 4002 within 2 s and the others stay open.
func TestKillEdgeResumeRestartNATSCap(tt *testing.T) {
	t := recordFailures(tt)
	if os.Getenv("CHARLA_APART") != "1" {
		t.Skip("the apart drill runs with CHARLA_APART=1 (make test-apart): it builds the commands and runs 10 processes")
	}
	dbURL := dbtest.NewURL(t, sqldb.MySQL) // skips without MYSQL_TEST_DSN; fails under REQUIRE_MYSQL=1
	natsDown := 3 * time.Second
	if v := os.Getenv("APART_NATS_DOWN"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("APART_NATS_DOWN: %v", err)
		}
		natsDown = d
	}
	began := time.Now()
	binaries(t)
	t.Logf("commands ready after %v", time.Since(began).Round(time.Millisecond))
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)

	nats := startNATS(t)
	dep := newDeployment(t, map[string]string{
		"DATABASE_URL":       dbURL,
		"BUS_URL":            nats.url(),
		"INTERNAL_API_TOKEN": internalToken,
		"LOG_FORMAT":         "text",
	})

	// Two replica sets, one after the other: the first migrates the database.
	var sets [2]replicaSet
	for i := range sets {
		s := &sets[i]
		s.urls = peers.URLs{Chat: freeAddr(t), Profile: freeAddr(t), Notify: freeAddr(t), Presence: freeAddr(t)}
		addrs := map[string]string{"profilesvc": s.urls.Profile, "chatsvc": s.urls.Chat, "notifysvc": s.urls.Notify, "presencesvc": s.urls.Presence}
		for _, name := range []string{"profilesvc", "chatsvc", "notifysvc", "presencesvc"} {
			env := s.env()
			env["RPC_ADDR"] = addrs[name]
			s.procs = append(s.procs, dep.start(fmt.Sprintf("%s-%d", name, i+1), name, env))
		}
		for j, name := range []string{"profilesvc", "chatsvc", "notifysvc", "presencesvc"} {
			dep.waitTCP(s.procs[j], addrs[name])
		}
	}
	edgeAddrs := []string{freeAddr(t), freeAddr(t)}
	startEdge := func(i int, name string) *proc {
		env := sets[i].env()
		env["EDGE_ADDR"] = edgeAddrs[i]
		env["EDGE_PRESENCE_GRACE"] = presenceGrace.String()
		env["RATE_LIMIT"] = "1000"
		env["RATE_BURST"] = "1000"
		return dep.start(name, "edge", env)
	}
	edges := []*proc{startEdge(0, "edge-a"), startEdge(1, "edge-b")}
	for i, e := range edges {
		dep.waitReady(e, edgeAddrs[i], startLimit)
	}
	t.Logf("deployment ready after %v: edge A %s (set 1), edge B %s (set 2), NATS %s", time.Since(began).Round(time.Millisecond), edgeAddrs[0], edgeAddrs[1], nats.addr)
	rpc := []*peers.Clients{peers.New(sets[0].urls, internalToken, nil), peers.New(sets[1].urls, internalToken, nil)}

	// Users: pairs across the edges, churners who are contacts of edge A's users.
	newUser := func(prefix string, i int) user {
		t.Helper()
		name := fmt.Sprintf("user_%s%d", prefix, i) // the database is fresh
		c := rpc[i%2]
		res, err := c.Profile.CreateUser(ctx, connect.NewRequest(&profilev1.CreateUserRequest{
			UserName: name, FirstName: "F" + name, LastName: "L" + name, Email: name + "@example.com",
		}))
		if err != nil {
			t.Fatalf("create user %s: %v", name, err)
		}
		sess, err := c.Profile.CreateSession(ctx, connect.NewRequest(&profilev1.CreateSessionRequest{UserId: res.Msg.GetUser().GetId()}))
		if err != nil {
			t.Fatalf("session of %s: %v", name, err)
		}
		return user{id: res.Msg.GetUser().GetId(), name: name, token: sess.Msg.GetToken()}
	}
	contact := func(a, b user) int64 {
		t.Helper()
		res, err := rpc[0].Chat.CreateContact(ctx, connect.NewRequest(&chatv1.CreateContactRequest{UserId: a.id, OtherUserId: b.id}))
		if err != nil {
			t.Fatalf("contact %s-%s: %v", a.name, b.name, err)
		}
		return res.Msg.GetChatId()
	}
	ps := make([]*pair, pairs)
	var onA []user // users whose device starts on edge A
	for i := range ps {
		p := &pair{sender: newUser("s", i), recipient: newUser("r", i), senderEdge: i % 2, acked: map[string]string{}}
		p.chatID = contact(p.sender, p.recipient)
		if p.senderEdge == 0 {
			onA = append(onA, p.sender)
		} else {
			onA = append(onA, p.recipient)
		}
		ps[i] = p
	}
	churn := make([]user, churners)
	for j := range churn {
		churn[j] = newUser("x", j)
		for _, u := range onA {
			contact(churn[j], u)
		}
	}

	// Devices.
	var devices []*device
	devOf := map[int64]*device{}
	for _, p := range ps {
		for _, side := range []struct {
			u    user
			edge int
			dst  **device
		}{{p.sender, p.senderEdge, &p.senderDev}, {p.recipient, 1 - p.senderEdge, &p.recipDev}} {
			d, err := newDevice(ctx, side.u.name, side.u.id, side.u.token, edgeAddrs, side.edge, false)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(d.stop)
			*side.dst = d
			devices = append(devices, d)
			devOf[side.u.id] = d
		}
	}

	// Phase 1: load, and kill -9 edge A in the middle of it.
	var acked atomic.Int64
	var loadWG, sideWG sync.WaitGroup
	loadDone := make(chan struct{})
	var failMu sync.Mutex
	var failures []string
	fail := func(format string, args ...any) {
		failMu.Lock()
		failures = append(failures, fmt.Sprintf(format, args...))
		failMu.Unlock()
	}
	send := func(p *pair, from, to int) {
		for m := from; m < to; m++ {
			cmid := fmt.Sprintf("%s-%d", p.sender.name, m)
			f, resent, err := p.senderDev.call("SEND_CHAT_MESSAGE", map[string]any{
				"toUserId": p.recipient.id, "text": fmt.Sprintf("message %d of %s", m, p.sender.name), "clientMessageId": cmid,
			})
			p.mu.Lock()
			p.resent += resent
			p.mu.Unlock()
			if err != nil {
				fail("%s: send %s: %v", p.sender.name, cmid, err)
				return
			}
			if f.Type != "SERVER_ACK" {
				fail("%s: send %s: %s %s", p.sender.name, cmid, f.Type, f.Payload)
				continue
			}
			var ack struct {
				MessageID       string `json:"messageId"`
				ClientMessageID string `json:"clientMessageId"`
			}
			if err := json.Unmarshal(f.Payload, &ack); err != nil || ack.MessageID == "" || ack.ClientMessageID != cmid {
				fail("%s: ack of %s: %s", p.sender.name, cmid, f.Payload)
				continue
			}
			p.mu.Lock()
			if prev, ok := p.acked[cmid]; ok && prev != ack.MessageID {
				fail("%s: %s acked as %s and as %s", p.sender.name, cmid, prev, ack.MessageID)
			}
			p.acked[cmid] = ack.MessageID
			p.mu.Unlock()
			acked.Add(1)
			time.Sleep(sendPause)
		}
	}
	for _, p := range ps {
		loadWG.Add(1)
		go func() {
			defer loadWG.Done()
			send(p, 0, messages)
		}()
		sideWG.Add(1)
		go func() { // the recipient reads now and then: MESSAGE_STATUS_UPDATE read
			defer sideWG.Done()
			for {
				select {
				case <-loadDone:
					return
				case <-time.After(readEvery):
				}
				f, _, err := p.recipDev.call("MESSAGES_READ", map[string]any{"chatId": strconv.FormatInt(p.chatID, 10)})
				if err != nil || f.Type != "SERVER_ACK" {
					fail("%s: MESSAGES_READ: %v %s %s", p.recipient.name, err, f.Type, f.Payload)
					return
				}
			}
		}()
	}
	created := map[int64][]string{} // user → notification ids
	var createdMu sync.Mutex
	sideWG.Add(1)
	go func() { // notifications for edge A's users, through both notify replicas
		defer sideWG.Done()
		for k := 0; ; k++ {
			select {
			case <-loadDone:
				return
			case <-time.After(notifyEvery):
			}
			u := onA[k%len(onA)]
			res, err := rpc[k%2].Notify.CreateNotification(ctx, connect.NewRequest(&notifyv1.CreateNotificationRequest{
				UserId: u.id, Type: "system", Title: "drill", Message: fmt.Sprint("notification ", k),
			}))
			if err != nil {
				fail("create notification for %s: %v", u.name, err)
				return
			}
			createdMu.Lock()
			created[u.id] = append(created[u.id], strconv.FormatInt(res.Msg.GetNotification().GetId(), 10))
			createdMu.Unlock()
		}
	}()
	var churnCycles atomic.Int64
	for j, u := range churn {
		sideWG.Add(1)
		go func() { // presence changes: contacts of edge A's users come and go on edge B
			defer sideWG.Done()
			for {
				select {
				case <-loadDone:
					return
				case <-time.After(presenceGrace + time.Duration(100+50*j)*time.Millisecond):
				}
				d, err := newDevice(ctx, u.name, u.id, u.token, edgeAddrs, 1, true)
				if err != nil {
					fail("churn %s: %v", u.name, err)
					return
				}
				time.Sleep(150 * time.Millisecond)
				d.stop()
				churnCycles.Add(1)
			}
		}()
	}
	// Kill edge A a third of the way in.
	waitFor(t, deliverLimit, "a third of the messages acknowledged", func() bool {
		dep.checkAlive(edges...)
		failMu.Lock()
		defer failMu.Unlock()
		if len(failures) > 0 {
			t.Fatalf("during the load:\n%s", strings.Join(failures, "\n"))
		}
		return acked.Load() >= pairs*messages/3
	})
	killedAt := time.Now()
	edges[0].kill()
	t.Logf("edge A killed (SIGKILL) after %d acked messages", acked.Load())
	loadWG.Wait()
	close(loadDone)
	sideWG.Wait()
	t.Logf("phase 1 load done %v after the kill: %d messages acked, %d churn cycles", time.Since(killedAt).Round(time.Millisecond), acked.Load(), churnCycles.Load())
	if len(failures) > 0 {
		t.Fatalf("during the load:\n%s", strings.Join(failures, "\n"))
	}
	var slowestResume time.Duration
	for _, u := range onA {
		d := devOf[u.id]
		conns := d.snapshot()
		if last := conns[len(conns)-1]; len(conns) < 2 || last.edge != edgeAddrs[1] {
			t.Fatalf("%s: %d connections, the last on %s; want it resumed on edge B", d.name, len(conns), last.edge)
		}
		slowestResume = max(slowestResume, conns[1].openedAt.Sub(killedAt))
	}
	t.Logf("edge A's %d clients resumed on edge B within %v of the kill", len(onA), slowestResume.Round(time.Millisecond))
	waitDelivered(t, ps)
	checkNotifications(t, devOf, created)
	var presenceEvents int
	for _, u := range onA {
		for k, n := range devOf[u.id].keys() {
			if strings.HasPrefix(k, "presence:") {
				presenceEvents += n
			}
		}
	}
	if presenceEvents == 0 {
		t.Fatal("edge A's users got no PRESENCE_EVENT: the churn did not raise presence changes")
	}
	checkSeqs(t, rpc[1], devices, "after the kill")
	t.Logf("phase 1 checked %v after the kill: %d PRESENCE_EVENTs to edge A's users, %d resent sends", time.Since(killedAt).Round(time.Millisecond), presenceEvents, totalResent(ps))

	// Phase 2: edge A back, its clients move back; NATS restarts.
	edges[0] = startEdge(0, "edge-a2")
	dep.waitReady(edges[0], edgeAddrs[0], startLimit)
	for _, u := range onA {
		d := devOf[u.id]
		n := d.connCount()
		d.moveTo(0)
		waitFor(t, deliverLimit, d.name+" back on edge A", func() bool {
			c := d.snapshot()
			return len(c) > n && c[len(c)-1].edge == edgeAddrs[0]
		})
	}
	connsBefore := map[string]int{}
	for _, d := range devices {
		connsBefore[d.name] = d.connCount()
	}
	stoppedAt := time.Now()
	nats.stop()
	// Messages sent while NATS is down: acknowledged once stored, their events appended
	// when NATS is back.
	var during sync.WaitGroup
	for _, p := range ps {
		during.Add(1)
		go func() {
			defer during.Done()
			send(p, messages, messages+duringMessages)
		}()
	}
	var downStatus []string
	for time.Since(stoppedAt) < natsDown {
		time.Sleep(500 * time.Millisecond)
		downStatus = append(downStatus, fmt.Sprintf("%d/%d", ready(ctx, edgeAddrs[0]), ready(ctx, edgeAddrs[1])))
	}
	nats.start()
	startedAt := time.Now()
	during.Wait()
	t.Logf("%d messages sent while NATS was down acknowledged %v after it was back", pairs*duringMessages, time.Since(startedAt).Round(time.Millisecond))
	var recovered [2]time.Duration
	for i, e := range edges {
		recovered[i] = dep.waitReady(e, edgeAddrs[i], recoverLimit)
	}
	t.Logf("NATS down %v (edges' /ready A/B meanwhile: %s); ready again after %v / %v", startedAt.Sub(stoppedAt).Round(time.Millisecond), strings.Join(downStatus, " "), recovered[0].Round(time.Millisecond), recovered[1].Round(time.Millisecond))
	var after sync.WaitGroup
	sentAfter := time.Now()
	for _, p := range ps {
		after.Add(1)
		go func() {
			defer after.Done()
			send(p, messages+duringMessages, messages+duringMessages+afterMessages)
		}()
	}
	after.Wait()
	if len(failures) > 0 {
		t.Fatalf("after the NATS restart:\n%s", strings.Join(failures, "\n"))
	}
	waitDelivered(t, ps)
	t.Logf("after the NATS restart: %d more messages acked and delivered in %v", pairs*afterMessages, time.Since(sentAfter).Round(time.Millisecond))
	checkSeqs(t, rpc[0], devices, "after the NATS restart")
	for _, d := range devices {
		if n := d.connCount(); n != connsBefore[d.name] {
			t.Errorf("%s reconnected during the NATS restart (%d connections, had %d)", d.name, n, connsBefore[d.name])
		}
	}
	checkStoredOnce(t, ps)

	// Phase 3: the connection cap across edges.
	capUser := newUser("cap", 0)
	var capDevs []*device
	var eleventh time.Time // when the connection over the cap was dialed
	for i := range 11 {
		if i == 10 {
			eleventh = time.Now()
		}
		edge := 0
		if i >= 6 {
			edge = 1
		}
		d, err := newDevice(ctx, fmt.Sprintf("cap-%d", i), capUser.id, capUser.token, edgeAddrs, edge, true)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(d.stop)
		capDevs = append(capDevs, d)
		time.Sleep(5 * time.Millisecond) // distinct upgrade times
	}
	oldest := capDevs[0]
	waitFor(t, deliverLimit, "the oldest connection closed", func() bool {
		return oldest.snapshot()[0].readErr != nil
	})
	c := oldest.snapshot()[0]
	if c.closeCode != 4002 {
		t.Fatalf("the oldest connection ended with close %d (%v), want 4002", c.closeCode, c.readErr)
	}
	closedAfter := c.endedAt.Sub(eleventh)
	if closedAfter > capCloseLimit {
		t.Errorf("the oldest connection was closed %v after the 11th connected, want within %v (§8.5)", closedAfter, capCloseLimit)
	}
	for _, d := range capDevs[1:] {
		if f, _, err := d.call("GET_CHAT_LIST", nil); err != nil || f.Type != "CHAT_LIST" {
			t.Errorf("%s: %v %s, want it open", d.name, err, f.Type)
		}
	}
	checkNoFlap(t, ctx, dbURL, ps, onA, killedAt)
	dep.checkAlive(append(edges, append(sets[0].procs, sets[1].procs...)...)...)
	t.Logf("cap: oldest closed with 4002 %v after the 11th connection; whole drill %v", closedAfter.Round(time.Millisecond), time.Since(began).Round(time.Millisecond))
}

// waitFor polls cond until it holds, failing after limit.
func waitFor(t testing.TB, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, limit)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitDelivered waits until every acknowledged message has reached its recipient, then
// checks that none arrived twice.
func waitDelivered(t testing.TB, ps []*pair) {
	t.Helper()
	missing := func(p *pair) []string {
		keys := p.recipDev.keys()
		p.mu.Lock()
		defer p.mu.Unlock()
		var out []string
		for cmid, id := range p.acked {
			if keys["msg:"+id] == 0 {
				out = append(out, cmid)
			}
		}
		sort.Strings(out)
		return out
	}
	deadline := time.Now().Add(deliverLimit)
	for _, p := range ps {
		for len(missing(p)) > 0 && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		if m := missing(p); len(m) > 0 {
			t.Errorf("%s never got %d acknowledged messages: %v", p.recipient.name, len(m), m)
		}
		for k, n := range p.recipDev.keys() {
			if strings.HasPrefix(k, "msg:") && n > 1 {
				t.Errorf("%s got %s %d times", p.recipient.name, k, n)
			}
		}
	}
	if t.Failed() {
		t.FailNow()
	}
}

// checkNotifications: each user got each notification created for it, once.
func checkNotifications(t testing.TB, devOf map[int64]*device, created map[int64][]string) {
	t.Helper()
	for u, ids := range created {
		d := devOf[u]
		waitFor(t, deliverLimit, d.name+"'s notifications", func() bool {
			keys := d.keys()
			for _, id := range ids {
				if keys["notification:"+id] == 0 {
					return false
				}
			}
			return true
		})
		for _, id := range ids {
			if n := d.keys()["notification:"+id]; n != 1 {
				t.Errorf("%s got notification %s %d times", d.name, id, n)
			}
		}
	}
}

// checkSeqs compares every device's events with its user's history (read through c),
// after waiting for each device to have received all of it.
func checkSeqs(t testing.TB, c *peers.Clients, devices []*device, when string) {
	t.Helper()
	var problems []string
	total := 0
	deadline := time.Now().Add(deliverLimit)
	for _, d := range devices {
		h, err := readHistory(context.Background(), c, d.userID)
		if err != nil {
			t.Fatal(err)
		}
		last := lastExpected(d, h)
		for time.Now().Before(deadline) {
			d.mu.Lock()
			seen := d.maxSeqLocked()
			d.mu.Unlock()
			if seen >= last {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		problems = append(problems, checkDevice(d, h)...)
		total += int(h.last)
	}
	if len(problems) > 0 {
		t.Fatalf("%s: sequenced events wrong:\n%s", when, strings.Join(problems, "\n"))
	}
	t.Logf("%s: %d devices saw all %d sequenced events of their users exactly once, in seq order", when, len(devices), total)
}

// checkStoredOnce reads each pair's chat back: every acknowledged message stored once.
func checkStoredOnce(t testing.TB, ps []*pair) {
	t.Helper()
	for _, p := range ps {
		f, _, err := p.senderDev.call("GET_CHAT_MESSAGES", map[string]any{"chatId": strconv.FormatInt(p.chatID, 10), "limit": 200})
		if err != nil || f.Type != "CHAT_MESSAGES" {
			t.Fatalf("%s: GET_CHAT_MESSAGES: %v %s %s", p.sender.name, err, f.Type, f.Payload)
		}
		var res struct {
			Messages []struct {
				ID              string `json:"id"`
				ClientMessageID string `json:"clientMessageId"`
			} `json:"messages"`
			HasMore bool `json:"hasMore"`
		}
		if err := json.Unmarshal(f.Payload, &res); err != nil {
			t.Fatal(err)
		}
		stored := map[string]int{}
		for _, m := range res.Messages {
			stored[m.ClientMessageID]++
		}
		p.mu.Lock()
		for cmid, id := range p.acked {
			if stored[cmid] != 1 {
				t.Errorf("%s: %s (id %s) stored %d times", p.sender.name, cmid, id, stored[cmid])
			}
		}
		if len(res.Messages) != len(p.acked) || res.HasMore {
			t.Errorf("%s: chat holds %d messages (more: %v), %d acknowledged", p.sender.name, len(res.Messages), res.HasMore, len(p.acked))
		}
		p.mu.Unlock()
	}
}

func totalResent(ps []*pair) int {
	n := 0
	for _, p := range ps {
		p.mu.Lock()
		n += p.resent
		p.mu.Unlock()
	}
	return n
}

// reapLimit: the users of a dead edge are settled within 30 s (docs/protocol.md §5).
const reapLimit = 30 * time.Second

// checkNoFlap waits until presence has dropped the connections the killed edge A left
// behind (its lease expires, the sweeper reaps them), then checks that no user of a pair
// was ever announced offline to its partner: each stayed connected throughout, moving
// between edges faster than EDGE_PRESENCE_GRACE.
func checkNoFlap(t testing.TB, ctx context.Context, dbURL string, ps []*pair, onA []user, killedAt time.Time) {
	t.Helper()
	db, err := sqldb.Open(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ids := make([]string, len(onA))
	for i, u := range onA {
		ids[i] = strconv.FormatInt(u.id, 10)
	}
	query := "SELECT COUNT(*) FROM PresenceConnection WHERE UserId IN (" + strings.Join(ids, ",") + ")"
	for {
		var n int
		if err := db.QueryRowContext(ctx, query).Scan(&n); err != nil {
			t.Fatalf("count the connections of edge A's users: %v", err)
		}
		if n == len(onA) { // one live connection each
			break
		}
		if time.Since(killedAt) > reapLimit {
			t.Fatalf("edge A's users still hold %d connections %v after its death, want %d (one each)", n, reapLimit, len(onA))
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("the dead edge's connections were reaped %v after the kill", time.Since(killedAt).Round(time.Millisecond))
	for _, p := range ps {
		for _, side := range []struct {
			d     *device
			other user
		}{{p.senderDev, p.recipient}, {p.recipDev, p.sender}} {
			if n := side.d.keys()[fmt.Sprintf("presence:%d:user_offline", side.other.id)]; n > 0 {
				t.Errorf("%s was told %d times that %s went offline; it never did", side.d.name, n, side.other.name)
			}
		}
	}
}
