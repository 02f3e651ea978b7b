package eventlog

import (
	"context"
	"sync"
)

// Memory is the log of the one-process mode: everything in this process's memory, lost
// when it exits (a client that resumes after a restart is told "failed" and refetches).
type Memory struct {
	opt Options

	mu      sync.Mutex
	users   map[int64]*memUser
	ring    []*Record // the newest records of the whole log, for tails that resume
	ringAt  int       // index of the oldest record in ring
	ringLen int
	nextPos uint64
	subs    map[*memSub]struct{}
	closed  bool

	keys     map[memKey]*Record // keyed records younger than DedupeWindow
	keyOrder []memKeyAt         // the same, oldest first, for expiry
}

// memKey names a keyed event of one user.
type memKey struct {
	user int64
	key  string
}

type memKeyAt struct {
	k      memKey
	timeMs int64
}

type memUser struct {
	last uint64
	recs []*Record // held records, oldest first, consecutive seqs ending at last
}

type memSub struct {
	queue chan *Record
	cut   chan struct{} // closed when queue overflowed
	isCut bool
}

// Sizes of the in-memory log's buffers.
const (
	// MemoryRingSize is how many of the newest records a tail can resume from.
	MemoryRingSize = 1 << 17
	// MemoryTailBuffer is how many records may wait for a slow tail before it is cut off.
	MemoryTailBuffer = 1 << 15
	// tailBatch is the most records passed to one call of a tail's handler.
	tailBatch = 256
)

// NewMemory returns an empty in-memory log.
func NewMemory(opt Options) *Memory {
	return &Memory{
		opt:     opt.withDefaults(),
		users:   make(map[int64]*memUser),
		ring:    make([]*Record, MemoryRingSize),
		nextPos: 1,
		subs:    make(map[*memSub]struct{}),
		keys:    make(map[memKey]*Record),
	}
}

// Append implements Log.
func (m *Memory) Append(_ context.Context, ev Event, users []int64) ([]Record, error) {
	users = uniqueUsers(users)
	out := make([]Record, 0, len(users))
	now := m.opt.Now()
	nowMs := now.UnixMilli()
	oldest := now.Add(-m.opt.MaxAge).UnixMilli()
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, ErrClosed
	}
	if ev.Key != "" {
		m.expireKeys(now.Add(-DedupeWindow).UnixMilli())
	}
	for _, u := range users {
		if ev.Key != "" {
			if r, ok := m.keys[memKey{u, ev.Key}]; ok {
				out = append(out, *r)
				continue
			}
		}
		h := m.users[u]
		if h == nil {
			h = &memUser{}
			m.users[u] = h
		}
		h.last++
		r := &Record{Position: m.nextPos, UserID: u, Seq: h.last, Service: ev.Service, Exclude: ev.Exclude, TimeMs: nowMs, Data: ev.Data}
		m.nextPos++
		h.recs = append(h.recs, r)
		if ev.Key != "" {
			k := memKey{u, ev.Key}
			m.keys[k] = r
			m.keyOrder = append(m.keyOrder, memKeyAt{k, nowMs})
		}
		// Drop what is both beyond the newest MaxEvents and older than MaxAge.
		drop := 0
		for len(h.recs)-drop > m.opt.MaxEvents && h.recs[drop].TimeMs < oldest {
			drop++
		}
		if drop > 0 {
			clear(h.recs[:drop])
			h.recs = h.recs[drop:]
		}
		m.pushRing(r)
		for s := range m.subs {
			if s.isCut {
				continue
			}
			select {
			case s.queue <- r:
			default:
				s.isCut = true
				close(s.cut)
			}
		}
		out = append(out, *r)
	}
	return out, nil
}

// expireKeys forgets the keys remembered before oldestMs. Called with mu held.
func (m *Memory) expireKeys(oldestMs int64) {
	n := 0
	for n < len(m.keyOrder) && m.keyOrder[n].timeMs < oldestMs {
		delete(m.keys, m.keyOrder[n].k)
		n++
	}
	if n > 0 {
		clear(m.keyOrder[:n])
		m.keyOrder = m.keyOrder[n:]
	}
}

func (m *Memory) pushRing(r *Record) {
	if m.ringLen < len(m.ring) {
		m.ring[(m.ringAt+m.ringLen)%len(m.ring)] = r
		m.ringLen++
		return
	}
	m.ring[m.ringAt] = r
	m.ringAt = (m.ringAt + 1) % len(m.ring)
}

// Tail implements Log.
func (m *Memory) Tail(ctx context.Context, after *uint64, started func(uint64), h func([]Record) error) error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return ErrClosed
	}
	head := m.nextPos - 1
	start := head
	var replay []Record
	if after != nil {
		start = *after
		oldest := m.nextPos
		if m.ringLen > 0 {
			oldest = m.ring[m.ringAt].Position
		}
		if start > head || start+1 < oldest {
			m.mu.Unlock()
			return ErrTooOld
		}
		for i := range m.ringLen {
			r := m.ring[(m.ringAt+i)%len(m.ring)]
			if r.Position > start {
				replay = append(replay, *r)
			}
		}
	}
	s := &memSub{queue: make(chan *Record, MemoryTailBuffer), cut: make(chan struct{})}
	m.subs[s] = struct{}{}
	m.mu.Unlock()
	defer func() {
		m.mu.Lock()
		delete(m.subs, s)
		m.mu.Unlock()
	}()

	started(start)
	for len(replay) > 0 {
		n := min(len(replay), tailBatch)
		if err := h(replay[:n]); err != nil {
			return err
		}
		replay = replay[n:]
	}
	batch := make([]Record, 0, tailBatch)
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-s.cut:
			return ErrFellBehind
		case r := <-s.queue:
			batch = append(batch[:0], *r)
		drain:
			for len(batch) < tailBatch {
				select {
				case r := <-s.queue:
					batch = append(batch, *r)
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

// Read implements Log.
func (m *Memory) Read(_ context.Context, user int64, after uint64) (History, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return History{}, ErrClosed
	}
	h := m.users[user]
	if h == nil {
		return History{Complete: after == 0}, nil
	}
	out := History{LastSeq: h.last}
	if after > h.last {
		return out, nil
	}
	first := h.last + 1
	if len(h.recs) > 0 {
		first = h.recs[0].Seq
	}
	if after+1 < first {
		return out, nil
	}
	out.Complete = true
	for _, r := range h.recs[after+1-first:] {
		out.Records = append(out.Records, *r)
	}
	return out, nil
}

// LastSeq implements Log.
func (m *Memory) LastSeq(_ context.Context, user int64) (uint64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return 0, ErrClosed
	}
	if h := m.users[user]; h != nil {
		return h.last, nil
	}
	return 0, nil
}

// Close implements Log: appends fail from now on; running tails end with their context.
func (m *Memory) Close() error {
	m.mu.Lock()
	m.closed = true
	m.mu.Unlock()
	return nil
}
