package eventlog

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"
)

// JetStreamOptions name where the JetStream log lives.
type JetStreamOptions struct {
	// Stream is the stream's name; empty means DefaultStream.
	Stream string
	// Subject is the prefix of the users' subjects (<Subject>.<userID>); empty means
	// DefaultSubject.
	Subject string
	// Replicas is the stream's replica count; 0 means 1.
	Replicas int
	// CacheSize is how many users' newest (stream seq, seq) a process remembers; 0 means
	// DefaultCacheSize.
	CacheSize int
}

// Defaults of JetStreamOptions.
const (
	DefaultStream    = "CHARLA_EVENTS"
	DefaultSubject   = "charla.user"
	DefaultCacheSize = 100_000
)

// Record headers.
const (
	HeaderSeq     = "Charla-Seq"
	HeaderService = "Charla-Service"
	HeaderExclude = "Charla-Exclude"
	HeaderTime    = "Charla-Time"
)

const (
	// duplicateWindow is how long the server remembers a Nats-Msg-Id: longer than an
	// Append's retries after a lost ack, short to keep the server's id table small.
	duplicateWindow = DedupeWindow
	// publishAckTimeout bounds the wait for one pipelined publish's ack, and every other
	// request of an Append (a read of the newest record, a publish): a request lost while
	// the connection to NATS was down is never answered, and waiting for it until the
	// caller's deadline would spend the retries that deadline leaves.
	publishAckTimeout = 5 * time.Second
	// maxConflicts is how many "wrong last sequence" answers one user's append accepts.
	maxConflicts = 50
	// maxFailures is how many transient failures (timeouts, disconnects) one user's
	// append accepts; with the backoff below they span about 5 s.
	maxFailures = 8
	// appendStripes is the number of mutexes that serialize a process's appends per user.
	appendStripes = 1024
	// readBatch is the most messages one pull of Read asks for.
	readBatch = 512
	// readConsumerIdle is when the server drops a Read consumer whose delete was lost.
	readConsumerIdle = 30 * time.Second
	// tailHeartbeat is how often the server tells a tail's consumer it is alive; two missed
	// make the consumer recreate itself.
	tailHeartbeat = 5 * time.Second
	// cleanupTimeout bounds deleting a consumer after its read or tail ended.
	cleanupTimeout = 5 * time.Second
)

// JetStream is the log over NATS JetStream, shared by every process on the stream.
//
// One stream (JetStreamOptions.Stream, "CHARLA_EVENTS" by default) holds the whole log;
// every user has one subject in it, <prefix>.<userID> (prefix JetStreamOptions.Subject,
// "charla.user" by default). A record is one message on its user's subject: headers
// Charla-Seq (the user's seq), Charla-Service, Charla-Exclude (absent when empty),
// Charla-Time (Unix ms, from Options.Now) and Nats-Msg-Id; the data is Event.Data. A
// record's Position is the message's stream sequence.
//
// Stream limits, set by OpenJetStream on every start (created, or updated when they differ;
// the last process to start wins if their options differ):
//
//   - subjects <prefix>.*, file storage, JetStreamOptions.Replicas replicas (default 1);
//   - MaxMsgsPerSubject = Options.MaxEvents, discard old: each user's newest MaxEvents
//     records are held. JetStream cannot also express "and every record younger than
//     MaxAge", so Options.MaxAge is not applied: a user who gets more than MaxEvents events
//     within MaxAge keeps only the newest MaxEvents (size RESUME_MAX_EVENTS for the peak);
//   - no MaxAge, MaxMsgs, MaxBytes or MaxMsgSize (the server's max_payload applies): a
//     user's newest record must never be removed, it carries the user's counter. The disk
//     held is at most users × MaxEvents × record size;
//   - DenyDelete and DenyPurge, for the same reason (deleting the stream resets every
//     counter: restart the processes after doing so, as their caches would be stale);
//   - Duplicates window DedupeWindow (1 min: Event.Key and Append's retries), AllowDirect when there is one replica (direct
//     gets of a follower could be stale).
//
// Append gives a user's record the seq after the one in the newest message of its subject,
// and publishes it with the expected-last-subject-sequence precondition set to that
// message's stream sequence (0 when the subject has none: the server reads 0 as "no message
// on this subject"). Two appenders that read the same newest message cannot both succeed:
// the loser gets "wrong last sequence", reads the newest message again and retries, so no
// two records of a user share a seq and seq n+1 is never stored before n, across any number
// of processes. Each process caches user → (stream seq, seq) of the user's newest record
// (an LRU of JetStreamOptions.CacheSize users) and serializes its own appends per user
// (striped mutexes), so the usual Append is one round trip whatever its number of users:
// their messages are published together and the acks awaited together.
//
// A publish whose outcome is unknown (lost ack, disconnect) is resolved by reading the
// subject's newest message: if it carries our Nats-Msg-Id, it was stored. Otherwise the
// record is published again with the same Nats-Msg-Id, which the server's duplicate window
// recognizes if an earlier attempt was stored and then followed by another process's
// record. Only a retry later than the window after the lost attempt could store an event
// twice (under two seqs; clients treat events idempotently, docs/protocol.md §8.3).
//
// When Append fails, the records of some of its users may have been stored.
//
// Tail follows the stream with an ordered consumer (it recreates itself after a NATS
// restart or a missed heartbeat, continuing after the last message delivered); it never
// returns ErrFellBehind, as a slow tail only pulls more slowly (a handler that blocks for
// more than two heartbeats, 10 s, makes the consumer recreate itself: harmless, but
// wasteful). Records removed by the per-user limit before a slow tail reached them are
// skipped: the tail's reader sees the jump in that user's seq. Tail returns ErrTooOld when
// after is above the stream's last sequence, or when after+1 is below its first held one.
//
// Read gets the user's newest message first (LastSeq; nothing more when after is not
// below it), then all the held messages of the user's subject through an ephemeral
// consumer, deleted after the read.
//
// Appends, tails and reads may run concurrently from any number of goroutines.
type JetStream struct {
	opt     Options
	jsopt   JetStreamOptions
	js      jetstream.JetStream
	stream  jetstream.Stream
	cache   *lru.Cache[int64, userState]
	seed    maphash.Seed
	stripes [appendStripes]sync.Mutex
	idBase  string
	idSeq   atomic.Uint64

	life   sync.RWMutex // Append holds it shared; Close exclusively
	closed atomic.Bool
}

var _ Log = (*JetStream)(nil)

// userState is a user's newest record as a process last knew it.
type userState struct {
	streamSeq uint64 // its stream sequence; 0: the user has no record
	seq       uint64 // its seq
}

// OpenJetStream creates the stream named by jsopt on nc's server, or updates it when its
// limits differ from those documented above (openStream), and returns the log over it.
// Close does not close nc.
func OpenJetStream(ctx context.Context, nc *nats.Conn, opt Options, jsopt JetStreamOptions) (*JetStream, error) {
	opt = opt.withDefaults()
	jsopt, err := jsopt.withDefaults()
	if err != nil {
		return nil, err
	}
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncTimeout(publishAckTimeout))
	if err != nil {
		return nil, fmt.Errorf("eventlog: JetStream context: %w", err)
	}
	stream, err := openStream(ctx, js, streamConfig(opt, jsopt))
	if err != nil {
		return nil, err
	}
	cache, err := lru.New[int64, userState](jsopt.CacheSize)
	if err != nil {
		return nil, fmt.Errorf("eventlog: cache of %d users: %w", jsopt.CacheSize, err)
	}
	return &JetStream{
		opt:    opt,
		jsopt:  jsopt,
		js:     js,
		stream: stream,
		cache:  cache,
		seed:   maphash.MakeSeed(),
		idBase: nuid.Next(),
	}, nil
}

// openStream returns the stream want names, creating it, or updating it when its limits
// differ from want's. A stream already as wanted is not updated: every process opens the
// log when it starts, and nats-server (v2.12.1) races inside its update path when several
// update one stream at once (the race detector flags it in the apart tests); an update
// that changes nothing would only add a round trip.
func openStream(ctx context.Context, js jetstream.JetStream, want jetstream.StreamConfig) (jetstream.Stream, error) {
	stream, err := js.Stream(ctx, want.Name)
	switch {
	case err == nil && sameLimits(stream.CachedInfo().Config, want):
		return stream, nil
	case errors.Is(err, jetstream.ErrStreamNotFound):
		// Processes starting together all get here: creating a stream that another one
		// created meanwhile with the same limits succeeds and updates nothing.
		stream, err = createStream(ctx, js, want)
		if err == nil {
			return stream, nil
		}
		if !errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			return nil, fmt.Errorf("eventlog: create stream %s: %w", want.Name, err)
		}
		// Created meanwhile with other limits: updated below.
	case err != nil:
		return nil, fmt.Errorf("eventlog: stream %s: %w", want.Name, err)
	}
	stream, err = js.CreateOrUpdateStream(ctx, want)
	if err != nil {
		return nil, fmt.Errorf("eventlog: create or update stream %s: %w", want.Name, err)
	}
	return stream, nil
}

// createAttempts bounds createStream's tries.
const createAttempts = 5

// createStream creates the stream want names, trying again after a short pause while the
// server fails it on its side (500). nats-server (seen with v2.12.1 embedded, a few times in
// a hundred starts under the race detector) can fail a create with "error creating store
// for stream": the parents of the stream's directory were gone when it made it (its log:
// "mkdir …/jetstream/$G/streams: no such file or directory"); most likely its account
// setup, which makes that directory and removes it again to test that it can, ran
// meanwhile. A configuration the server refuses (400) is not tried again.
func createStream(ctx context.Context, js jetstream.JetStream, want jetstream.StreamConfig) (jetstream.Stream, error) {
	for attempt := 1; ; attempt++ {
		stream, err := js.CreateStream(ctx, want)
		var apiErr *jetstream.APIError
		if err == nil || attempt == createAttempts || !errors.As(err, &apiErr) || apiErr.Code < 500 {
			return stream, err
		}
		if cerr := sleep(ctx, time.Duration(attempt)*20*time.Millisecond); cerr != nil {
			return nil, fmt.Errorf("%w (while waiting to try again after: %w)", cerr, err)
		}
	}
}

// sameLimits reports whether a stream configured as got already has every setting
// streamConfig sets as in want (the server fills in the others). A setting added to
// streamConfig must be compared here too: TestSameLimitsSeesEverySettingStreamConfigSets
// changes each in turn.
func sameLimits(got, want jetstream.StreamConfig) bool {
	return got.Description == want.Description && slices.Equal(got.Subjects, want.Subjects) &&
		got.Retention == want.Retention && got.Storage == want.Storage && got.Replicas == want.Replicas &&
		got.MaxMsgsPerSubject == want.MaxMsgsPerSubject && got.MaxMsgs == want.MaxMsgs &&
		got.MaxBytes == want.MaxBytes && got.MaxAge == want.MaxAge && got.MaxMsgSize == want.MaxMsgSize &&
		got.MaxConsumers == want.MaxConsumers && got.Discard == want.Discard && got.Duplicates == want.Duplicates &&
		got.AllowDirect == want.AllowDirect && got.DenyDelete == want.DenyDelete && got.DenyPurge == want.DenyPurge
}

// StreamOptions returns the options of a log in the stream named name (EVENTS_STREAM):
// DefaultStream keeps DefaultSubject; any other stream gets its own subject prefix,
// "charla.events.<name>", so several deployments can share one NATS server without their
// histories meeting. It fails on a name JetStream would refuse.
func StreamOptions(name string) (JetStreamOptions, error) {
	o := JetStreamOptions{Stream: name}
	if name != "" && name != DefaultStream {
		o.Subject = "charla.events." + name
	}
	_, err := o.withDefaults()
	return o, err
}

func (o JetStreamOptions) withDefaults() (JetStreamOptions, error) {
	if o.Stream == "" {
		o.Stream = DefaultStream
	}
	if o.Subject == "" {
		o.Subject = DefaultSubject
	}
	if o.Replicas == 0 {
		o.Replicas = 1
	}
	if o.CacheSize == 0 {
		o.CacheSize = DefaultCacheSize
	}
	if strings.ContainsAny(o.Stream, ".*> \t\r\n/\\") {
		return o, fmt.Errorf("eventlog: stream name %q: must not contain '.', '*', '>', '/', '\\' or white space", o.Stream)
	}
	for tok := range strings.SplitSeq(o.Subject, ".") {
		if tok == "" || strings.ContainsAny(tok, "*> \t\r\n") {
			return o, fmt.Errorf("eventlog: subject prefix %q: want dot-separated tokens without wildcards or white space", o.Subject)
		}
	}
	if o.Replicas < 1 || o.Replicas > 5 {
		return o, fmt.Errorf("eventlog: replicas %d: want 1 to 5", o.Replicas)
	}
	if o.CacheSize < 0 {
		return o, fmt.Errorf("eventlog: cache size %d: want a positive number of users", o.CacheSize)
	}
	return o, nil
}

func streamConfig(opt Options, o JetStreamOptions) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:              o.Stream,
		Description:       "Charla user event log (protocol v2 §8): one subject per user, see shared/eventlog",
		Subjects:          []string{o.Subject + ".*"},
		Retention:         jetstream.LimitsPolicy,
		Storage:           jetstream.FileStorage,
		Replicas:          o.Replicas,
		MaxMsgsPerSubject: int64(opt.MaxEvents),
		MaxMsgs:           -1,
		MaxBytes:          -1,
		MaxAge:            0,
		MaxMsgSize:        -1,
		MaxConsumers:      -1,
		Discard:           jetstream.DiscardOld,
		Duplicates:        duplicateWindow,
		AllowDirect:       o.Replicas == 1,
		DenyDelete:        true,
		DenyPurge:         true,
	}
}

// Stream returns the stream's name (for tests and operators).
func (j *JetStream) Stream() string { return j.jsopt.Stream }

func (j *JetStream) subject(user int64) string {
	return j.jsopt.Subject + "." + strconv.FormatInt(user, 10)
}

// appendJob is one user's part of an Append.
type appendJob struct {
	user int64
	id   string // Nats-Msg-Id
	st   userState
	fut  jetstream.PubAckFuture // nil: take the slow path
	rec  Record
}

// Append implements Log.
func (j *JetStream) Append(ctx context.Context, ev Event, users []int64) ([]Record, error) {
	users = uniqueUsers(users)
	if len(users) == 0 {
		return nil, nil
	}
	j.life.RLock()
	defer j.life.RUnlock()
	if j.closed.Load() {
		return nil, ErrClosed
	}
	defer j.lockUsers(users)()

	nowMs := j.opt.Now().UnixMilli()
	jobs := make([]appendJob, len(users))
	// The fast path: publish every user's record at once, expecting the cached state.
	for i, u := range users {
		jb := &jobs[i]
		jb.user, jb.id = u, j.newID()
		if ev.Key != "" {
			// The server's duplicate window makes a keyed event idempotent per user.
			jb.id = ev.Key + "." + strconv.FormatInt(u, 10)
		}
		st, ok := j.cache.Get(u)
		if !ok {
			var err error
			if st, _, err = j.lookupBounded(ctx, u); err != nil {
				continue // the slow path retries
			}
		}
		jb.st = st
		fut, err := j.js.PublishMsgAsync(j.message(u, st.seq+1, jb.id, ev, nowMs),
			jetstream.WithExpectLastSequencePerSubject(st.streamSeq))
		if err == nil {
			jb.fut = fut
		}
	}
	for i := range jobs {
		jb := &jobs[i]
		if jb.fut == nil {
			continue
		}
		select {
		case ack := <-jb.fut.Ok():
			if ack.Duplicate { // not expected for a fresh id; let the slow path sort it out
				jb.fut = nil
				continue
			}
			jb.rec = j.record(jb.user, jb.st.seq+1, ack.Sequence, ev, nowMs)
			j.cache.Add(jb.user, userState{streamSeq: ack.Sequence, seq: jb.st.seq + 1})
		case <-jb.fut.Err():
			jb.fut = nil // conflict or unknown outcome
		case <-ctx.Done():
			j.forget(users)
			return nil, fmt.Errorf("eventlog: append: %w", ctx.Err())
		}
	}
	out := make([]Record, len(jobs))
	for i := range jobs {
		jb := &jobs[i]
		if jb.fut == nil {
			j.cache.Remove(jb.user)
			rec, err := j.appendSlow(ctx, jb, ev, nowMs)
			if err != nil {
				j.forget(users[i:])
				return nil, err
			}
			jb.rec = rec
		}
		out[i] = jb.rec
	}
	return out, nil
}

// appendSlow stores jb's record after the fast path could not: it reads the user's newest
// record from the server before every attempt.
func (j *JetStream) appendSlow(ctx context.Context, jb *appendJob, ev Event, nowMs int64) (Record, error) {
	conflicts, failures := 0, 0
	var lastErr error
	for {
		if conflicts >= maxConflicts || failures >= maxFailures {
			return Record{}, fmt.Errorf("eventlog: append to user %d: gave up after %d conflicts and %d failures: %w", jb.user, conflicts, failures, lastErr)
		}
		if err := j.pause(ctx, conflicts, failures); err != nil {
			return Record{}, fmt.Errorf("eventlog: append to user %d: %w (last failure: %v)", jb.user, err, lastErr)
		}
		st, raw, err := j.lookupBounded(ctx, jb.user)
		if errors.Is(err, ErrMalformed) {
			return Record{}, err
		}
		if err != nil {
			lastErr = err
			failures++
			continue
		}
		if raw != nil && raw.Header.Get(jetstream.MsgIDHeader) == jb.id {
			// An earlier attempt was stored and is still the newest record.
			rec, err := j.decodeRaw(raw)
			if err != nil {
				return Record{}, err
			}
			j.cache.Add(jb.user, st)
			return rec, nil
		}
		pctx, cancel := context.WithTimeout(ctx, publishAckTimeout)
		ack, err := j.js.PublishMsg(pctx, j.message(jb.user, st.seq+1, jb.id, ev, nowMs),
			jetstream.WithExpectLastSequencePerSubject(st.streamSeq))
		cancel()
		switch {
		case err == nil && ack.Duplicate:
			// An earlier attempt was stored and another record followed it.
			gctx, cancel := context.WithTimeout(ctx, publishAckTimeout)
			raw, err := j.stream.GetMsg(gctx, ack.Sequence)
			cancel()
			if err != nil {
				return Record{}, fmt.Errorf("eventlog: append to user %d: read back stream seq %d: %w", jb.user, ack.Sequence, err)
			}
			return j.decodeRaw(raw)
		case err == nil:
			j.cache.Add(jb.user, userState{streamSeq: ack.Sequence, seq: st.seq + 1})
			return j.record(jb.user, st.seq+1, ack.Sequence, ev, nowMs), nil
		case isWrongLastSequence(err):
			lastErr = err
			conflicts++
		case ctx.Err() != nil:
			return Record{}, fmt.Errorf("eventlog: append to user %d: %w", jb.user, ctx.Err())
		case isAPIError(err):
			return Record{}, fmt.Errorf("eventlog: append to user %d on stream %s: %w", jb.user, j.jsopt.Stream, err)
		default:
			lastErr = err
			failures++
		}
	}
}

// pause waits before a slow-path attempt: not at all before the first two conflicts, a
// little random time after more (two processes racing for one user), an exponential
// backoff after failures (a server restarting).
func (j *JetStream) pause(ctx context.Context, conflicts, failures int) error {
	var d time.Duration
	if failures > 0 {
		d = min(20*time.Millisecond<<(failures-1), time.Second)
	}
	if conflicts > 2 {
		d += rand.N(time.Duration(conflicts) * time.Millisecond)
	}
	return sleep(ctx, d)
}

// sleep waits d, or until ctx ends, and returns ctx's error then (at once for d ≤ 0 when ctx
// has ended).
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// lookupBounded is lookup bounded by publishAckTimeout.
func (j *JetStream) lookupBounded(ctx context.Context, user int64) (userState, *jetstream.RawStreamMsg, error) {
	ctx, cancel := context.WithTimeout(ctx, publishAckTimeout)
	defer cancel()
	return j.lookup(ctx, user)
}

// lookup reads the newest record of user from the server: its state, and the message
// (nil when the user has no record).
func (j *JetStream) lookup(ctx context.Context, user int64) (userState, *jetstream.RawStreamMsg, error) {
	raw, err := j.stream.GetLastMsgForSubject(ctx, j.subject(user))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return userState{}, nil, nil
	}
	if err != nil {
		return userState{}, nil, fmt.Errorf("eventlog: newest record of user %d: %w", user, err)
	}
	seq, err := parseSeq(raw.Header)
	if err != nil {
		return userState{}, nil, fmt.Errorf("%w (newest record of user %d: stream seq %d on %s)", err, user, raw.Sequence, raw.Subject)
	}
	return userState{streamSeq: raw.Sequence, seq: seq}, raw, nil
}

func (j *JetStream) message(user int64, seq uint64, id string, ev Event, nowMs int64) *nats.Msg {
	m := nats.NewMsg(j.subject(user))
	m.Data = ev.Data
	m.Header[HeaderSeq] = []string{strconv.FormatUint(seq, 10)}
	m.Header[HeaderService] = []string{ev.Service}
	if ev.Exclude != "" {
		m.Header[HeaderExclude] = []string{ev.Exclude}
	}
	m.Header[HeaderTime] = []string{strconv.FormatInt(nowMs, 10)}
	m.Header[jetstream.MsgIDHeader] = []string{id}
	return m
}

func (j *JetStream) record(user int64, seq, pos uint64, ev Event, nowMs int64) Record {
	return Record{Position: pos, UserID: user, Seq: seq, Service: ev.Service, Exclude: ev.Exclude, TimeMs: nowMs, Data: ev.Data}
}

// newID returns a Nats-Msg-Id unique across processes and time.
func (j *JetStream) newID() string {
	return j.idBase + strconv.FormatUint(j.idSeq.Add(1), 36)
}

// lockUsers locks the stripes of users in index order (so two Appends never deadlock) and
// returns the unlock.
func (j *JetStream) lockUsers(users []int64) func() {
	idx := make([]int, 0, len(users))
	for _, u := range users {
		idx = append(idx, int(maphash.Comparable(j.seed, u)%appendStripes))
	}
	slices.Sort(idx)
	idx = slices.Compact(idx)
	for _, i := range idx {
		j.stripes[i].Lock()
	}
	return func() {
		for _, i := range idx {
			j.stripes[i].Unlock()
		}
	}
}

// forget drops the cached state of users whose newest record is uncertain.
func (j *JetStream) forget(users []int64) {
	for _, u := range users {
		j.cache.Remove(u)
	}
}

func isWrongLastSequence(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) &&
		(apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence || apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant)
}

func isAPIError(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr)
}

// Tail implements Log.
func (j *JetStream) Tail(ctx context.Context, after *uint64, started func(uint64), h func([]Record) error) error {
	if j.closed.Load() {
		return ErrClosed
	}
	info, err := j.stream.Info(ctx)
	if err != nil {
		return fmt.Errorf("eventlog: tail: info of stream %s: %w", j.jsopt.Stream, err)
	}
	first, last := info.State.FirstSeq, info.State.LastSeq
	start := last
	if after != nil {
		start = *after
		if start > last || start+1 < first {
			return ErrTooOld
		}
	}
	cons, err := j.stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{j.jsopt.Subject + ".*"},
		DeliverPolicy:  jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:    start + 1,
	})
	if err != nil {
		return fmt.Errorf("eventlog: tail of stream %s from %d: %w", j.jsopt.Stream, start+1, err)
	}
	defer j.deleteConsumer(ctx, cons)

	msgs := make(chan jetstream.Msg, tailBatch)
	stop := make(chan struct{})
	var lastErr atomic.Pointer[error] // the consumer's newest trouble, for the error when it stops
	cc, err := cons.Consume(func(m jetstream.Msg) {
		select {
		case msgs <- m:
		case <-stop:
		}
	}, jetstream.PullHeartbeat(tailHeartbeat), jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
		lastErr.Store(&err)
	}))
	if err != nil {
		return fmt.Errorf("eventlog: tail of stream %s: %w", j.jsopt.Stream, err)
	}
	closed := cc.Closed()
	defer func() {
		close(stop)
		cc.Stop()
		<-closed
	}()

	started(start)
	batch := make([]Record, 0, tailBatch)
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-closed:
			err := nats.ErrConnectionClosed
			if p := lastErr.Load(); p != nil {
				err = *p
			}
			return fmt.Errorf("eventlog: tail of stream %s stopped: %w", j.jsopt.Stream, err)
		case m := <-msgs:
			batch = batch[:0]
		drain:
			for {
				rec, err := j.decodeMsg(m)
				if err != nil {
					return err
				}
				batch = append(batch, rec)
				if len(batch) == tailBatch {
					break
				}
				select {
				case m = <-msgs:
				default:
					break drain
				}
			}
			if err := h(batch); err != nil {
				return err
			}
		}
	}
}

// consumerInfo is what deleteConsumer needs of a consumer.
type consumerInfo interface {
	CachedInfo() *jetstream.ConsumerInfo
}

// deleteConsumer deletes c on the server (it would otherwise linger until its inactive
// threshold), even when ctx has ended.
func (j *JetStream) deleteConsumer(ctx context.Context, c consumerInfo) {
	info := c.CachedInfo()
	if info == nil {
		return
	}
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	_ = j.stream.DeleteConsumer(dctx, info.Name) // best effort: the server drops it when idle
}

// Read implements Log.
func (j *JetStream) Read(ctx context.Context, user int64, after uint64) (History, error) {
	if j.closed.Load() {
		return History{}, ErrClosed
	}
	st, raw, err := j.lookup(ctx, user)
	if err != nil {
		return History{}, err
	}
	if raw == nil {
		return History{Complete: after == 0}, nil
	}
	if after >= st.seq {
		return History{LastSeq: st.seq, Complete: after == st.seq}, nil
	}
	recs, err := j.readAll(ctx, user, st.streamSeq)
	if err != nil {
		return History{}, err
	}
	out := History{LastSeq: st.seq}
	if len(recs) == 0 {
		return out, nil
	}
	out.LastSeq = max(out.LastSeq, recs[len(recs)-1].Seq)
	if after+1 < recs[0].Seq {
		return out, nil // the oldest wanted are gone
	}
	for i, r := range recs {
		if r.Seq != recs[0].Seq+uint64(i) {
			return out, nil // a hole: not replayable (never expected)
		}
	}
	out.Complete = true
	out.Records = recs[after+1-recs[0].Seq:]
	return out, nil
}

// LastSeq implements Log: one request for the user's newest record (never the cache, which
// only knows this process's appends).
func (j *JetStream) LastSeq(ctx context.Context, user int64) (uint64, error) {
	if j.closed.Load() {
		return 0, ErrClosed
	}
	st, _, err := j.lookup(ctx, user)
	if err != nil {
		return 0, err
	}
	return st.seq, nil
}

// readAll returns the held records of user, up to at least the one at stream seq upTo.
func (j *JetStream) readAll(ctx context.Context, user int64, upTo uint64) ([]Record, error) {
	subj := j.subject(user)
	cons, err := j.stream.CreateConsumer(ctx, jetstream.ConsumerConfig{
		FilterSubject:     subj,
		DeliverPolicy:     jetstream.DeliverAllPolicy,
		AckPolicy:         jetstream.AckNonePolicy,
		MemoryStorage:     true,
		Replicas:          1,
		InactiveThreshold: readConsumerIdle,
	})
	if err != nil {
		return nil, fmt.Errorf("eventlog: read user %d: consumer on %s: %w", user, subj, err)
	}
	defer j.deleteConsumer(ctx, cons)
	var recs []Record
	for {
		batch, err := cons.FetchNoWait(readBatch)
		if err != nil {
			return nil, fmt.Errorf("eventlog: read user %d: fetch: %w", user, err)
		}
		n, pending, at := 0, uint64(0), uint64(0)
		for m := range batch.Messages() {
			rec, err := j.decodeMsg(m)
			if err != nil {
				return nil, err
			}
			md, _ := m.Metadata() // decodeMsg checked it
			n, pending, at = n+1, md.NumPending, rec.Position
			recs = append(recs, rec)
		}
		if err := batch.Error(); err != nil {
			return nil, fmt.Errorf("eventlog: read user %d: fetch: %w", user, err)
		}
		if n == 0 || pending == 0 || at >= upTo {
			return recs, nil
		}
	}
}

// decodeMsg turns a consumed message into its record.
func (j *JetStream) decodeMsg(m jetstream.Msg) (Record, error) {
	md, err := m.Metadata()
	if err != nil {
		return Record{}, fmt.Errorf("eventlog: message on %s without metadata: %w", m.Subject(), err)
	}
	return j.decode(m.Subject(), md.Sequence.Stream, m.Headers(), m.Data())
}

func (j *JetStream) decodeRaw(raw *jetstream.RawStreamMsg) (Record, error) {
	return j.decode(raw.Subject, raw.Sequence, raw.Header, raw.Data)
}

func (j *JetStream) decode(subject string, pos uint64, h nats.Header, data []byte) (Record, error) {
	bad := func(what string, err error) (Record, error) {
		return Record{}, fmt.Errorf("%w: %s: %w (stream seq %d on %s)", ErrMalformed, what, err, pos, subject)
	}
	tok, ok := strings.CutPrefix(subject, j.jsopt.Subject+".")
	if !ok {
		return bad("subject", fmt.Errorf("not under %s", j.jsopt.Subject))
	}
	user, err := strconv.ParseInt(tok, 10, 64)
	if err != nil {
		return bad("user id in subject", err)
	}
	seq, err := parseSeq(h)
	if err != nil {
		return Record{}, fmt.Errorf("%w (stream seq %d on %s)", err, pos, subject)
	}
	ms, err := strconv.ParseInt(headerValue(h, HeaderTime), 10, 64)
	if err != nil {
		return bad(HeaderTime, err)
	}
	return Record{
		Position: pos,
		UserID:   user,
		Seq:      seq,
		Service:  headerValue(h, HeaderService),
		Exclude:  headerValue(h, HeaderExclude),
		TimeMs:   ms,
		Data:     data,
	}, nil
}

// ErrMalformed: a message in the log's stream is not a record (a foreign publisher on the
// users' subjects, or a bug): it lacks a header or has a bad value.
var ErrMalformed = errors.New("eventlog: malformed record")

func parseSeq(h nats.Header) (uint64, error) {
	v := headerValue(h, HeaderSeq)
	seq, err := strconv.ParseUint(v, 10, 64)
	if err != nil || seq == 0 {
		return 0, fmt.Errorf("%w: header %s = %q: want a positive integer", ErrMalformed, HeaderSeq, v)
	}
	return seq, nil
}

// headerValue reads a header as written (Header.Get canonicalizes the key, which leaves
// ours unchanged, but a map lookup is cheaper).
func headerValue(h nats.Header, key string) string {
	if v := h[key]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// Close implements Log: appends fail from now on (it waits for running ones); running
// tails end with their context. The NATS connection stays open.
func (j *JetStream) Close() error {
	j.life.Lock()
	defer j.life.Unlock()
	if j.closed.Swap(true) {
		return nil
	}
	j.js.CleanupPublisher()
	return nil
}
