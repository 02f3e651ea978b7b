// Package delivery reports delivery receipts: once NEW_CHAT_MESSAGE has been written to a
// connection of its recipient, the message counts as delivered (docs/protocol.md §5.3). Writes
// happen on the connections' write pumps, which must never wait on an RPC, so Add only
// records the id; one goroutine coalesces the ids per recipient and, every Interval, sends
// all of them in one MarkDelivered call carrying a receipt per recipient (more calls only
// when they exceed MaxBatch ids). The chat service queues a call's receipts together, so
// they share one group commit (one UPDATE, one status event per chat and sender): one RPC
// and one commit per flush, however many recipients it covers.
//
// A receipt added with the span context of the message's delivery (AddTraced) ties its
// MarkDelivered call to the send's trace: the call runs under a "delivery receipts" span
// that is a child of the first traced message of the call and links to the others (the
// shared/telemetry batch span), so a message's trace leads from SEND_CHAT_MESSAGE to the
// "delivered" status update.
//
// Memory is bounded: beyond MaxPending ids waiting, new ones are dropped (and logged).
// A dropped receipt is not lost for good: the recipient's GET_CHAT_MESSAGES marks the
// message delivered as well. Batcher is safe for concurrent use.
package delivery

import (
	"cmp"
	"context"
	"log/slog"
	"slices"
	"sync"
	"time"

	"connectrpc.com/connect"
	"go.opentelemetry.io/otel/trace"

	chatv1 "github.com/charla/charla/proto/gen/chat/v1"
	"github.com/charla/charla/shared/telemetry"
)

// Marker is the chat service's MarkDelivered.
type Marker interface {
	MarkDelivered(context.Context, *connect.Request[chatv1.MarkDeliveredRequest]) (*connect.Response[chatv1.MarkDeliveredResponse], error)
}

// Options configure a Batcher.
type Options struct {
	// Interval is how long ids gather before a flush; small, since the sender waits to
	// see "delivered". 0 means 20 ms.
	Interval time.Duration
	// MaxPending bounds the ids waiting; 0 means 100,000.
	MaxPending int
	// MaxBatch bounds the ids of one call, all its receipts together; 0 means 2,000
	// (the chat service takes at most 5,000, and 1,000 per receipt).
	MaxBatch int
	// Workers is how many calls run at once; 0 means DefaultWorkers.
	Workers int
	// CallTimeout bounds each call; 0 means 10 s.
	CallTimeout time.Duration
	Log         *slog.Logger
}

// DefaultWorkers is how many MarkDelivered calls a flush runs at once unless told, when
// a flush holds more than MaxBatch ids: few enough to stay a small share of the chat
// service's concurrent streams.
const DefaultWorkers = 8

// Limits of one MarkDelivered call, set by the chat service.
const (
	maxReceiptsPerCall = 1000
	maxIDsPerReceipt   = 1000
	// maxTraced bounds the traces one call's span joins: the SDK keeps 128 links.
	maxTraced = 128
)

// Batcher coalesces delivery receipts.
type Batcher struct {
	m   Marker
	opt Options

	mu      sync.Mutex
	pending map[int64][]receipt // recipient → its receipts
	n       int
	dropped int64
	wake    chan struct{}
}

// New returns a Batcher; call Run to send.
func New(m Marker, o Options) *Batcher {
	if o.Interval <= 0 {
		o.Interval = 20 * time.Millisecond
	}
	if o.MaxPending <= 0 {
		o.MaxPending = 100000
	}
	if o.MaxBatch <= 0 {
		o.MaxBatch = 2000
	}
	if o.Workers <= 0 {
		o.Workers = DefaultWorkers
	}
	if o.CallTimeout <= 0 {
		o.CallTimeout = 10 * time.Second
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	return &Batcher{m: m, opt: o, pending: make(map[int64][]receipt), wake: make(chan struct{}, 1)}
}

// receipt is one message written to its recipient, with the span context of that write
// (invalid when untraced).
type receipt struct {
	id   int64
	sent trace.SpanContext
}

// Add records that message id was written to a connection of recipient. It never blocks.
func (b *Batcher) Add(recipient, id int64) { b.AddTraced(recipient, id, trace.SpanContext{}) }

// AddTraced is Add for a write traced by sent (the delivery span, in the trace of the
// message's send): the MarkDelivered call that carries the receipt joins that trace.
func (b *Batcher) AddTraced(recipient, id int64, sent trace.SpanContext) {
	b.mu.Lock()
	if b.n >= b.opt.MaxPending {
		b.dropped++
		b.mu.Unlock()
		return
	}
	b.pending[recipient] = append(b.pending[recipient], receipt{id, sent})
	b.n++
	b.mu.Unlock()
	select {
	case b.wake <- struct{}{}:
	default:
	}
}

// call is the receipts of one MarkDelivered call, and the span contexts of the traced ones.
type call struct {
	receipts []*chatv1.DeliveryReceipt
	sent     []trace.SpanContext
}

// take removes everything pending, as calls of at most MaxBatch distinct ids in all.
func (b *Batcher) take() ([]call, int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	var (
		out  []call
		cur  call
		size int // ids in cur
	)
	for user, rs := range b.pending {
		slices.SortFunc(rs, func(x, y receipt) int { return cmp.Compare(x.id, y.id) })
		// A message written to two tabs is one receipt.
		rs = slices.CompactFunc(rs, func(x, y receipt) bool { return x.id == y.id })
		for len(rs) > 0 {
			if size == b.opt.MaxBatch || len(cur.receipts) == maxReceiptsPerCall {
				out, cur, size = append(out, cur), call{}, 0
			}
			n := min(len(rs), b.opt.MaxBatch-size, maxIDsPerReceipt)
			ids := make([]int64, n)
			for i, r := range rs[:n] {
				ids[i] = r.id
				if r.sent.IsValid() && len(cur.sent) < maxTraced {
					cur.sent = append(cur.sent, r.sent)
				}
			}
			cur.receipts = append(cur.receipts, &chatv1.DeliveryReceipt{UserId: user, MessageIds: ids})
			size += n
			rs = rs[n:]
		}
	}
	if len(cur.receipts) > 0 {
		out = append(out, cur)
	}
	clear(b.pending)
	b.n = 0
	dropped := b.dropped
	b.dropped = 0
	return out, dropped
}

// Run sends receipts until ctx ends, then sends what is left (bounded by CallTimeout).
func (b *Batcher) Run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			b.flush(context.Background())
			return
		case <-b.wake:
		}
		// Gather for a moment so that a burst becomes one call per recipient.
		t := time.NewTimer(b.opt.Interval)
		select {
		case <-ctx.Done():
		case <-t.C:
		}
		t.Stop()
		b.flush(ctx)
	}
}

func (b *Batcher) flush(ctx context.Context) {
	calls, dropped := b.take()
	if dropped > 0 {
		b.opt.Log.Warn("delivery receipts dropped: too many pending", "dropped", dropped)
	}
	if len(calls) == 0 {
		return
	}
	work := make(chan call)
	var wg sync.WaitGroup
	for i := 0; i < min(b.opt.Workers, len(calls)); i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for c := range work {
				b.send(c)
			}
		}()
	}
	for _, c := range calls {
		work <- c
	}
	close(work)
	wg.Wait()
}

func (b *Batcher) send(c call) {
	ctx, cancel := context.WithTimeout(context.Background(), b.opt.CallTimeout)
	defer cancel()
	end := func(error) {}
	if len(c.sent) > 0 {
		members := make([]context.Context, len(c.sent))
		for i, sc := range c.sent {
			members[i] = trace.ContextWithSpanContext(context.Background(), sc)
		}
		ctx, end = telemetry.StartBatchSpan(ctx, "delivery receipts", members...)
	}
	_, err := b.m.MarkDelivered(ctx, connect.NewRequest(&chatv1.MarkDeliveredRequest{Receipts: c.receipts}))
	end(err)
	if err != nil {
		b.opt.Log.Warn("mark delivered", "recipients", len(c.receipts), "err", err)
	}
}
