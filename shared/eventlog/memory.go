package eventlog

import (
	"bytes"
	"context"
	"hash/maphash"
	"sync"
)

// Memory is the log of the one-process mode: everything in this process's memory, lost
// when it exits (a client that resumes after a restart is told "failed" and refetches).
//
// The history holds no Go pointers per record: each user's records are fixed-size structs
// in one slice, an event's bytes (exclude and data) are stored once however many users it
// went to, in the log's byte chunks (memstore.go), the ring of recent positions names
// records by user and seq, and keys are remembered by a 128-bit hash per event. At 2,000
// msg/s the history reaches a million records in minutes; held as a *Record each (with
// pointers to its strings and data) the garbage collector had to trace all of them in
// every cycle, and a cycle's mark phase took 0.4–0.6 s of the two cores, stalling
// deliveries. Pointer-free slices are marked without being scanned, and the byte chunks
// are outside the heap altogether (chunkmem_unix.go): with GOGC=100 the heap grows to
// about twice what it holds live, which for the history was most of the process's RSS.
type Memory struct {
	opt Options

	mu      sync.Mutex
	users   map[int64]*memUser
	bytes   byteStore
	ring    []ringEntry // the newest records of the whole log, for tails that resume
	ringAt  int         // index of the oldest entry in ring
	ringLen int
	nextPos uint64
	subs    map[*memSub]struct{}
	closed  bool

	services     []string          // interned Service names, indexed by storedEvent.service
	serviceIndex map[string]uint16 // the same, by name

	keySeed maphash.Seed
	// keys holds the hash (keyHash) of every Key appended within DedupeWindow, with the
	// time of its newest append: a filter that spares a keyed Append the search of its
	// users' records when the key is new (nearly always). Which users have the key is in
	// their records (storedEvent.key), so the filter costs one entry per event, not one
	// per user.
	keys        map[uint64]int64
	nextSweepMs int64 // when expireKeys next sweeps keys
}

// keyHash is a Key's seeded 64-bit hash, never 0 (0 in storedEvent.key means "no key").
// Records and the filter hold it instead of the string: two keys appended within
// DedupeWindow collide with a probability near 2⁻⁶⁴ per pair, and the later would be
// taken for a repeat of the earlier.
func (m *Memory) keyHash(key string) uint64 {
	return max(maphash.String(m.keySeed, key), 1)
}

// memUser is one user's history.
type memUser struct {
	last uint64
	// recs are the held records, oldest first, with consecutive seqs ending at last.
	recs []memRec
}

// memRec is one held record, without pointers: its event (key, service, exclude, data)
// is in the byte store, shared with the other users the event went to.
type memRec struct {
	pos    uint64
	timeMs int64
	event  byteLoc
}

// ringEntry names a record of the ring by user and seq.
type ringEntry struct {
	pos  uint64
	user int64
	seq  uint64
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
		opt:          opt.withDefaults(),
		users:        make(map[int64]*memUser),
		ring:         make([]ringEntry, MemoryRingSize),
		nextPos:      1,
		subs:         make(map[*memSub]struct{}),
		serviceIndex: make(map[string]uint16),
		keySeed:      maphash.MakeSeed(),
		keys:         make(map[uint64]int64),
	}
}

// ages are the cut-offs of one append: records older than oldest may be dropped (beyond
// a user's newest MaxEvents), keys older than keyOldest are forgotten.
type ages struct {
	nowMs, oldestMs, keyOldestMs int64
}

// Append implements Log.
func (m *Memory) Append(_ context.Context, ev Event, users []int64) ([]Record, error) {
	users = uniqueUsers(users)
	out := make([]Record, 0, len(users))
	now := m.opt.Now()
	at := ages{nowMs: now.UnixMilli(), oldestMs: now.Add(-m.opt.MaxAge).UnixMilli(), keyOldestMs: now.Add(-DedupeWindow).UnixMilli()}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, ErrClosed
	}
	m.expireKeys(at)
	var key uint64   // 0: no key
	keySeen := false // some user got a record of this key within DedupeWindow
	if ev.Key != "" {
		key = m.keyHash(ev.Key)
		_, keySeen = m.keys[key]
	}
	service := m.intern(ev.Service)
	var loc byteLoc
	stored := false // ev's bytes are in the store
	for _, u := range users {
		h := m.users[u]
		if keySeen && h != nil {
			if i, ok := h.keyed(&m.bytes, key, at.keyOldestMs); ok {
				out = append(out, h.at(m, u, i))
				continue
			}
		}
		if h == nil {
			h = &memUser{}
			m.users[u] = h
		}
		if !stored {
			loc = m.bytes.add(key, service, ev.Exclude, ev.Data, at.nowMs)
			stored = true
		}
		h.last++
		r := &Record{Position: m.nextPos, UserID: u, Seq: h.last, Service: ev.Service, Exclude: ev.Exclude, TimeMs: at.nowMs, Data: ev.Data}
		m.nextPos++
		m.bytes.ref(loc.chunk, u, r.Position)
		h.recs = append(h.recs, memRec{pos: r.Position, timeMs: at.nowMs, event: loc})
		m.dropOld(h, at)
		m.pushRing(ringEntry{pos: r.Position, user: u, seq: r.Seq})
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
	if stored && ev.Key != "" {
		m.keys[key] = at.nowMs
	}
	m.retire(at)
	return out, nil
}

// intern returns the index of a Service name, adding it if new. Called with mu held.
// Services are a handful of fixed names.
func (m *Memory) intern(service string) uint16 {
	if i, ok := m.serviceIndex[service]; ok {
		return i
	}
	i := uint16(len(m.services))
	m.services = append(m.services, service)
	m.serviceIndex[service] = i
	return i
}

// keyed returns the index of the user's record of the key with hash key (keyHash),
// searching the records appended since keyOldestMs, newest first.
func (h *memUser) keyed(s *byteStore, key uint64, keyOldestMs int64) (int, bool) {
	for i := len(h.recs) - 1; i >= 0 && h.recs[i].timeMs >= keyOldestMs; i-- {
		if s.get(h.recs[i].event).key == key {
			return i, true
		}
	}
	return 0, false
}

// dropOld drops the user's records that are beyond the newest MaxEvents and older than
// MaxAge, oldest first, releasing their bytes. A keyed record is also held for
// DedupeWindow (when MaxAge is shorter), so a repeat of its key still finds it. Called
// with mu held.
func (m *Memory) dropOld(h *memUser, at ages) {
	drop := 0
	for len(h.recs)-drop > m.opt.MaxEvents {
		r := h.recs[drop]
		if r.timeMs >= at.oldestMs || (r.timeMs >= at.keyOldestMs && m.bytes.get(r.event).key != 0) {
			break
		}
		m.bytes.release(r.event.chunk)
		drop++
	}
	h.recs = h.recs[drop:]
}

// retire empties the byte chunks last written before MaxAge, oldest first: it drops what
// retention allows of their users' records and copies the bytes of the records still held
// (an event's once, however many users hold it) into the newest chunk. Without it a
// user who gets few events would keep a whole chunk alive for each of their records.
// Called with mu held, after every append: a chunk is retired once, and most of its
// records are dropped by then.
func (m *Memory) retire(at ages) {
	for len(m.bytes.chunks) > 1 && m.bytes.chunks[0].writtenMs < at.oldestMs {
		num, c := m.bytes.first, m.bytes.chunks[0]
		moved := make(map[uint32]byteLoc)
		done := make(map[int64]bool)
		for _, u := range c.users {
			if done[u] {
				continue
			}
			done[u] = true
			h := m.users[u]
			m.dropOld(h, at)
			for i := range h.recs {
				r := &h.recs[i]
				if r.pos > c.maxPos {
					break // records are in position order: none further is in c
				}
				if r.event.chunk != num {
					continue
				}
				loc, ok := moved[r.event.off]
				if !ok {
					loc = m.bytes.copyIn(r.event, at.nowMs)
					moved[r.event.off] = loc
				}
				m.bytes.ref(loc.chunk, u, r.pos)
				r.event = loc
				m.bytes.release(num)
			}
		}
		if m.bytes.first == num {
			// Every record counted in c was moved or dropped, so c was released and
			// popped; if not, the counts are wrong: stop rather than loop.
			return
		}
	}
}

// firstSeq is the seq of the oldest held record (last+1 when none is held).
func (h *memUser) firstSeq() uint64 { return h.last - uint64(len(h.recs)) + 1 }

// record returns the user's held record with seq. Called with m.mu held.
func (h *memUser) record(m *Memory, user int64, seq uint64) (Record, bool) {
	first := h.firstSeq()
	if seq < first || seq > h.last {
		return Record{}, false
	}
	return h.at(m, user, int(seq-first)), true
}

// at returns the i-th held record. Its Data and Exclude are copies: the chunk holding
// them may be unmapped once the record is dropped (byteStore). Called with m.mu held.
func (h *memUser) at(m *Memory, user int64, i int) Record {
	mr := h.recs[i]
	ev := m.bytes.get(mr.event)
	return Record{
		Position: mr.pos,
		UserID:   user,
		Seq:      h.firstSeq() + uint64(i),
		Service:  m.services[ev.service],
		Exclude:  string(ev.exclude),
		TimeMs:   mr.timeMs,
		Data:     bytes.Clone(ev.data),
	}
}

// keySweepEvery is how often expireKeys sweeps: a key stays in the filter for up to
// DedupeWindow plus this after its newest append, which costs only memory (whether a user
// has the key is decided by their records' times).
const keySweepEvery = DedupeWindow / 4

// expireKeys forgets the keys whose newest append was before DedupeWindow, sweeping the
// filter every keySweepEvery: a few milliseconds for a million keys, cheaper than keeping
// the keys in order as well. Called with mu held.
func (m *Memory) expireKeys(at ages) {
	if at.nowMs < m.nextSweepMs {
		return
	}
	m.nextSweepMs = at.nowMs + keySweepEvery.Milliseconds()
	for k, t := range m.keys {
		if t < at.keyOldestMs {
			delete(m.keys, k)
		}
	}
}

func (m *Memory) pushRing(e ringEntry) {
	if m.ringLen < len(m.ring) {
		m.ring[(m.ringAt+m.ringLen)%len(m.ring)] = e
		m.ringLen++
		return
	}
	m.ring[m.ringAt] = e
	m.ringAt = (m.ringAt + 1) % len(m.ring)
}

// replayAfter returns the ring's records above position start, or ErrTooOld when some of
// them are no longer held (their user's retention dropped them). Called with mu held.
func (m *Memory) replayAfter(start uint64) ([]Record, error) {
	var replay []Record
	for i := range m.ringLen {
		e := m.ring[(m.ringAt+i)%len(m.ring)]
		if e.pos <= start {
			continue
		}
		h := m.users[e.user]
		if h == nil {
			return nil, ErrTooOld
		}
		r, ok := h.record(m, e.user, e.seq)
		if !ok {
			return nil, ErrTooOld
		}
		replay = append(replay, r)
	}
	return replay, nil
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
			oldest = m.ring[m.ringAt].pos
		}
		if start > head || start+1 < oldest {
			m.mu.Unlock()
			return ErrTooOld
		}
		var err error
		if replay, err = m.replayAfter(start); err != nil {
			m.mu.Unlock()
			return err
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
	first := h.firstSeq()
	if after+1 < first {
		return out, nil
	}
	out.Complete = true
	from := int(after + 1 - first)
	if n := len(h.recs) - from; n > 0 {
		out.Records = make([]Record, 0, n)
	}
	for i := from; i < len(h.recs); i++ {
		out.Records = append(out.Records, h.at(m, user, i))
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
