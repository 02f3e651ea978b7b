// Package sendbatch carries the SEND_CHAT_MESSAGE frames of all an edge's connections to
// the chat service in few calls: a send that arrives while MaxInFlight calls are already
// running waits for the next call, which takes every send waiting by then (up to MaxBatch
// messages or MaxBatchBytes) in one ChatService/SendMessages. At a low rate every send
// still goes out at once, alone; under load the calls grow instead of multiplying, as the
// chat service's group commit does for its transactions. One call instead of one per
// message saves, per message, an HTTP/2 request and response, the Connect and
// OpenTelemetry interceptors and a handler goroutine's start.
//
// Each send keeps its own deadline and answer: the chat service answers every message of
// a call in its position, with the ack or the error SendMessage would have given it alone.
// A send whose context ends while it waits is answered at once and left out of the call
// if that has not started (once sent, it may be stored, exactly as a timed-out
// SendMessage may). A call's span is a child of its first traced send and links to the
// others (shared/telemetry.StartBatchSpan). No goroutine runs while nothing is waiting.
//
// The queue is bounded (Options.MaxWaiting): a send that finds more sends waiting than the
// next calls can take is refused at once with ErrBusy (503 to the client) instead of
// waiting. That is the edge's push-back when the chat service is slower than the sends
// arrive: refusing costs a fraction of serving, so the edge keeps reading its connections
// and answering within the time the queue takes to drain, rather than leaving an
// ever-growing backlog in the connections' socket buffers that would take minutes to clear
// once the load drops.
//
// A length bound alone is not enough: each connection has at most one send in progress
// (the edge reads its next frame after answering the last), so with fewer connections
// than MaxWaiting the queue never fills and the backlog waits in the sockets instead.
// The queue therefore also watches how long the sends it hands to calls have waited
// (Options.QueueTarget, after CoDel): a queue that stays above the target for an interval
// is standing, and refuses from a call's worth of waiting sends on.
package sendbatch

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"

	chatv1 "github.com/charla/charla/proto/gen/chat/v1"
	"github.com/charla/charla/proto/gen/chat/v1/chatv1connect"
	"github.com/charla/charla/shared/telemetry"
)

// Sender is the chat service's SendMessages.
type Sender interface {
	SendMessages(context.Context, *connect.Request[chatv1.SendMessagesRequest]) (*connect.Response[chatv1.SendMessagesResponse], error)
}

// Options tune a Batcher. Zero values take the defaults.
type Options struct {
	// MaxInFlight is how many calls run at once; 0 means 2, so one call is always being
	// gathered while the other waits for the chat service's commit.
	MaxInFlight int
	// MaxBatch bounds the messages of one call; 0 means 200 (the chat service takes 500).
	MaxBatch int
	// MaxBatchBytes bounds the encoded messages of one call; 0 means 1 MiB (the internal
	// listener takes 4 MiB). A call holds at least one message whatever its size.
	MaxBatchBytes int
	// CallTimeout bounds a call whose sends have no deadline; 0 means 20 s. Otherwise a
	// call runs until the latest deadline of its sends.
	CallTimeout time.Duration
	// MaxWaiting bounds the sends waiting for a call: a send that finds that many waiting
	// is refused with ErrBusy. 0 means DefaultMaxWaiting; negative means no bound.
	MaxWaiting int
	// QueueTarget and QueueInterval detect a standing queue, as CoDel does: once every
	// call for QueueInterval has taken sends that waited QueueTarget or longer, the queue
	// is standing, and a send that finds a call's worth (MaxBatch) already waiting is
	// refused with ErrBusy. The first call whose sends waited less ends it. 0 means
	// DefaultQueueTarget and DefaultQueueInterval; a negative QueueTarget turns it off.
	QueueTarget, QueueInterval time.Duration
}

// DefaultMaxWaiting is Options.MaxWaiting's default: about a second of the chat service's
// work at the rates BENCHMARKS.md measures (one process, 2,000–4,000 msg/s). A tighter
// bound refused messages at rates the server still carried (5,000 msg/s: 100 of 50,000
// with a bound of 400) and changed nothing at twice the sustainable rate: with 1,000
// sending connections 2,000 is never reached, and the standing-queue rule does the work.
const DefaultMaxWaiting = 2000

// Defaults of Options.QueueTarget and QueueInterval. At the rates the server sustains a
// send waits for a call a few milliseconds at most (p50 of a whole message's trip at 5,000
// msg/s is 4 ms); 20 ms for a tenth of a second is a queue that is not draining.
const (
	DefaultQueueTarget   = 20 * time.Millisecond
	DefaultQueueInterval = 100 * time.Millisecond
)

// ErrBusy refuses a send that found Options.MaxWaiting sends already waiting, or a call's
// worth behind a standing queue (Options.QueueTarget): the chat service is busier than the
// sends arriving, and the client should try again shortly. It comes wrapped in a
// *connect.Error with code Unavailable.
var ErrBusy = errors.New("chat service busy: too many messages waiting; try again shortly")

// Batcher gathers sends into SendMessages calls. It is safe for concurrent use.
type Batcher struct {
	to  Sender
	opt Options

	mu       sync.Mutex
	waiting  []*send
	inFlight int // calls running, each in its own goroutine

	// The standing-queue detector (Options.QueueTarget), guarded by mu: aboveSince is
	// when calls began taking sends that had waited QueueTarget or longer (zero while
	// they wait less), standing is set once that has lasted QueueInterval.
	aboveSince time.Time
	standing   bool
}

// send is one SendMessage waiting for its call.
type send struct {
	ctx    context.Context
	req    *chatv1.SendMessageRequest
	size   int
	queued time.Time   // when it began waiting
	reply  chan result // buffered: the call never waits for the sender
}

type result struct {
	res *chatv1.SendMessageResponse
	err error
}

// New returns a batcher that sends through to.
func New(to Sender, opt Options) *Batcher {
	if opt.MaxInFlight <= 0 {
		opt.MaxInFlight = 2
	}
	if opt.MaxBatch <= 0 {
		opt.MaxBatch = 200
	}
	if opt.MaxBatchBytes <= 0 {
		opt.MaxBatchBytes = 1 << 20
	}
	if opt.CallTimeout <= 0 {
		opt.CallTimeout = 20 * time.Second
	}
	if opt.MaxWaiting == 0 {
		opt.MaxWaiting = DefaultMaxWaiting
	}
	if opt.QueueTarget == 0 {
		opt.QueueTarget = DefaultQueueTarget
	}
	if opt.QueueInterval <= 0 {
		opt.QueueInterval = DefaultQueueInterval
	}
	return &Batcher{to: to, opt: opt}
}

// SendMessage sends one message in the next call and returns its answer: the ack, the
// error the chat service gave that message (a *connect.Error with its code and message),
// the call's error, ctx's, or ErrBusy without waiting when the queue is full.
func (b *Batcher) SendMessage(ctx context.Context, req *connect.Request[chatv1.SendMessageRequest]) (*connect.Response[chatv1.SendMessageResponse], error) {
	s := &send{ctx: ctx, req: req.Msg, size: proto.Size(req.Msg), queued: time.Now(), reply: make(chan result, 1)}
	b.mu.Lock()
	if b.full() {
		b.mu.Unlock()
		return nil, connect.NewError(connect.CodeUnavailable, ErrBusy)
	}
	b.waiting = append(b.waiting, s)
	start := b.inFlight < b.opt.MaxInFlight
	if start {
		b.inFlight++
	}
	b.mu.Unlock()
	if start {
		go b.run()
	}
	select {
	case r := <-s.reply:
		if r.err != nil {
			return nil, r.err
		}
		return connect.NewResponse(r.res), nil
	case <-ctx.Done():
		return nil, contextError(ctx.Err())
	}
}

// full says whether a new send is refused: the queue holds MaxWaiting sends, or it is
// standing and holds a call's worth. Called with mu held.
func (b *Batcher) full() bool {
	n := len(b.waiting)
	return (b.opt.MaxWaiting > 0 && n >= b.opt.MaxWaiting) || (b.standing && n >= b.opt.MaxBatch)
}

// observe feeds the standing-queue detector with the wait of the oldest send a call
// takes. Called with mu held.
func (b *Batcher) observe(now time.Time, waited time.Duration) {
	if b.opt.QueueTarget < 0 {
		return
	}
	if waited < b.opt.QueueTarget {
		b.aboveSince, b.standing = time.Time{}, false
		return
	}
	if b.aboveSince.IsZero() {
		b.aboveSince = now
	}
	b.standing = now.Sub(b.aboveSince) >= b.opt.QueueInterval
}

// Waiting returns how many sends wait for a call (for tests and metrics).
func (b *Batcher) Waiting() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.waiting)
}

// contextError is the Connect error a call ended by err would have returned.
func contextError(err error) error {
	if errors.Is(err, context.DeadlineExceeded) {
		return connect.NewError(connect.CodeDeadlineExceeded, err)
	}
	return connect.NewError(connect.CodeCanceled, err)
}

// run makes calls while sends wait, then exits.
func (b *Batcher) run() {
	for {
		batch := b.take()
		if batch == nil {
			return
		}
		b.call(batch)
	}
}

// take removes the next call's sends from the waiting ones (skipping those whose context
// has ended: their senders have their answer); nil, and one call fewer in flight, when
// none waits.
func (b *Batcher) take() []*send {
	b.mu.Lock()
	defer b.mu.Unlock()
	var batch []*send
	bytes := 0
	n := 0
	for _, s := range b.waiting {
		if len(batch) == b.opt.MaxBatch || (len(batch) > 0 && bytes+s.size > b.opt.MaxBatchBytes) {
			break
		}
		n++
		if s.ctx.Err() != nil {
			continue
		}
		batch = append(batch, s)
		bytes += s.size
	}
	if len(batch) > 0 {
		now := time.Now()
		b.observe(now, now.Sub(batch[0].queued))
	}
	clear(b.waiting[:n])
	b.waiting = b.waiting[n:]
	if len(b.waiting) == 0 {
		b.waiting = nil // let a queue that once grew large shrink
	}
	if len(batch) == 0 && len(b.waiting) == 0 {
		b.inFlight--
		return nil
	}
	return batch
}

// call sends batch in one SendMessages and answers each send.
func (b *Batcher) call(batch []*send) {
	if len(batch) == 0 {
		return
	}
	deadline, ok := latestDeadline(batch)
	if !ok {
		deadline = time.Now().Add(b.opt.CallTimeout)
	}
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	members := make([]context.Context, len(batch))
	req := &chatv1.SendMessagesRequest{Messages: make([]*chatv1.SendMessageRequest, len(batch))}
	for i, s := range batch {
		members[i] = s.ctx
		req.Messages[i] = s.req
	}
	ctx, end := telemetry.StartBatchSpan(ctx, "send messages", members...)
	res, err := b.to.SendMessages(ctx, connect.NewRequest(req))
	end(err)
	if err == nil && len(res.Msg.GetResults()) != len(batch) {
		err = connect.NewError(connect.CodeInternal, fmt.Errorf("chat service answered %d results for %d messages", len(res.Msg.GetResults()), len(batch)))
	}
	for i, s := range batch {
		if err != nil {
			s.reply <- result{err: err}
			continue
		}
		r := res.Msg.GetResults()[i]
		switch {
		case r.GetSent() != nil:
			s.reply <- result{res: r.GetSent()}
		case r.GetError() != nil:
			s.reply <- result{err: connect.NewError(connect.Code(r.GetError().GetCode()), errors.New(r.GetError().GetMessage()))}
		default:
			s.reply <- result{err: connect.NewError(connect.CodeInternal, fmt.Errorf("chat service answered message %d of %d with nothing", i+1, len(batch)))}
		}
	}
}

// latestDeadline returns the latest deadline of the sends; ok is false if one has none.
func latestDeadline(batch []*send) (latest time.Time, ok bool) {
	for _, s := range batch {
		d, has := s.ctx.Deadline()
		if !has {
			return time.Time{}, false
		}
		if d.After(latest) {
			latest = d
		}
	}
	return latest, true
}

// Client is a chat service client whose SendMessage goes through a Batcher; every other
// call goes straight to the client.
type Client struct {
	chatv1connect.ChatServiceClient
	batcher *Batcher
}

// Wrap returns c with SendMessage batched (New(c, opt)).
func Wrap(c chatv1connect.ChatServiceClient, opt Options) *Client {
	return &Client{ChatServiceClient: c, batcher: New(c, opt)}
}

// SendMessage sends through the batcher.
func (c *Client) SendMessage(ctx context.Context, req *connect.Request[chatv1.SendMessageRequest]) (*connect.Response[chatv1.SendMessageResponse], error) {
	return c.batcher.SendMessage(ctx, req)
}
