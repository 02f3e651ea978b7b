package eventlog

import (
	"context"
	"hash/maphash"
	"sync"
)

// Memory is the log of the one-process mode: everything in this process's memory, lost
// when it exits (a client that resumes after a restart is told "failed" and refetches).
//
// The history holds no Go pointers per record: each user's records are fixed-size structs
// in one slice and their bytes (exclude and data) are appended to a few byte chunks per user,
// the ring of recent positions names records by user and seq, and keys are remembered by
// a 128-bit hash. At 2,000 msg/s the history reaches a million records in minutes; held
// as a *Record each (with pointers to its strings and data) the garbage collector had to
// trace all of them in every cycle, and a cycle's mark phase took 0.4–0.6 s of the two
// cores, stalling deliveries. Pointer-free slices are marked without being scanned.
type Memory struct {
	opt Options

	mu      sync.Mutex
	users   map[int64]*memUser
	ring    []ringEntry // the newest records of the whole log, for tails that resume
	ringAt  int         // index of the oldest entry in ring
	ringLen int
	nextPos uint64
	subs    map[*memSub]struct{}
	closed  bool

	services     []string          // interned Service names, indexed by memRec.service
	serviceIndex map[string]uint16 // the same, by name

	keySeeds [2]maphash.Seed
	keys     map[keyID]keyedRec // keyed records younger than DedupeWindow
	keyOrder []keyAt            // the same, oldest first, for expiry
}

// keyID names a keyed event of one user: the key's 128-bit hash (two seeded 64-bit
// hashes), so the map holds no strings. Two keys of one user within DedupeWindow collide
// with a probability near 2⁻¹²⁸ per pair.
type keyID struct {
	user   int64
	h1, h2 uint64
}

// keyedRec is what a remembered key answers: the record its first append stored.
type keyedRec struct {
	pos    uint64
	seq    uint64
	timeMs int64
}

type keyAt struct {
	k      keyID
	timeMs int64
}

// memUser is one user's history.
type memUser struct {
	last uint64
	// recs are the held records, oldest first, with consecutive seqs ending at last.
	recs []memRec
	// chunks hold each held record's exclude then data bytes, oldest first, a record's
	// bytes always within one chunk; firstChunk is the number (counted over all the user's
	// chunks ever) of chunks[0]. Appending fills the last chunk or starts a new one, and
	// dropping releases whole chunks from the front: no byte is ever moved or overwritten,
	// so the Data slices handed out stay valid and unchanged, and no append copies the
	// user's history (a single growing slice did, under the log's lock).
	chunks     [][]byte
	firstChunk uint64
}

// Chunk sizes: a user's first chunk is small (most users have few events) and each next
// one twice the last, up to maxChunk; a record larger than that gets a chunk of its own.
const (
	minChunk = 256
	maxChunk = 16 << 10
)

// memRec is one held record, without pointers.
type memRec struct {
	pos        uint64
	timeMs     int64
	chunk      uint64 // the chunk holding its bytes, numbered like memUser.firstChunk
	off        uint32 // of its bytes in that chunk
	dataLen    uint32
	excludeLen uint32
	service    uint16
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
		keySeeds:     [2]maphash.Seed{maphash.MakeSeed(), maphash.MakeSeed()},
		keys:         make(map[keyID]keyedRec),
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
	var h1, h2 uint64
	if ev.Key != "" {
		m.expireKeys(now.Add(-DedupeWindow).UnixMilli())
		h1, h2 = maphash.String(m.keySeeds[0], ev.Key), maphash.String(m.keySeeds[1], ev.Key)
	}
	service := m.intern(ev.Service)
	for _, u := range users {
		h := m.users[u]
		if ev.Key != "" {
			if k, ok := m.keys[keyID{u, h1, h2}]; ok {
				out = append(out, m.keyedRecord(u, h, k, ev))
				continue
			}
		}
		if h == nil {
			h = &memUser{}
			m.users[u] = h
		}
		h.last++
		r := &Record{Position: m.nextPos, UserID: u, Seq: h.last, Service: ev.Service, Exclude: ev.Exclude, TimeMs: nowMs, Data: ev.Data}
		m.nextPos++
		h.store(r, service)
		if ev.Key != "" {
			k := keyID{u, h1, h2}
			m.keys[k] = keyedRec{pos: r.Position, seq: r.Seq, timeMs: nowMs}
			m.keyOrder = append(m.keyOrder, keyAt{k, nowMs})
		}
		h.dropOld(m.opt.MaxEvents, oldest)
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

// keyedRecord is the record a remembered key stands for: the held one, or (when the user's
// retention already dropped it) one rebuilt from the key and this event, which has the
// same key and so announces the same thing. Called with mu held.
func (m *Memory) keyedRecord(user int64, h *memUser, k keyedRec, ev Event) Record {
	if h != nil {
		if r, ok := h.record(m, user, k.seq); ok {
			return r
		}
	}
	return Record{Position: k.pos, UserID: user, Seq: k.seq, Service: ev.Service, Exclude: ev.Exclude, TimeMs: k.timeMs, Data: ev.Data}
}

// store appends r to the user's held records.
func (h *memUser) store(r *Record, service uint16) {
	n := len(r.Exclude) + len(r.Data)
	if len(h.chunks) == 0 || cap(h.chunks[len(h.chunks)-1])-len(h.chunks[len(h.chunks)-1]) < n {
		size := minChunk
		if len(h.chunks) > 0 {
			size = min(2*cap(h.chunks[len(h.chunks)-1]), maxChunk)
		}
		h.chunks = append(h.chunks, make([]byte, 0, max(size, n)))
	}
	last := len(h.chunks) - 1
	c := h.chunks[last]
	off := len(c)
	c = append(c, r.Exclude...)
	h.chunks[last] = append(c, r.Data...)
	h.recs = append(h.recs, memRec{
		pos:        r.Position,
		timeMs:     r.TimeMs,
		chunk:      h.firstChunk + uint64(last),
		off:        uint32(off),
		dataLen:    uint32(len(r.Data)),
		excludeLen: uint32(len(r.Exclude)),
		service:    service,
	})
}

// dropOld drops what is both beyond the newest maxEvents and older than oldestMs, and
// the chunks only they used.
func (h *memUser) dropOld(maxEvents int, oldestMs int64) {
	drop := 0
	for len(h.recs)-drop > maxEvents && h.recs[drop].timeMs < oldestMs {
		drop++
	}
	if drop == 0 {
		return
	}
	h.recs = h.recs[drop:]
	dead := len(h.chunks)
	if len(h.recs) > 0 {
		dead = int(h.recs[0].chunk - h.firstChunk)
	}
	if dead > 0 {
		clear(h.chunks[:dead])
		h.chunks = h.chunks[dead:]
		h.firstChunk += uint64(dead)
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

// at returns the i-th held record. Its Data aliases the user's bytes (never modified);
// its Exclude is a copy. Called with m.mu held.
func (h *memUser) at(m *Memory, user int64, i int) Record {
	mr := h.recs[i]
	c := h.chunks[mr.chunk-h.firstChunk]
	start := int(mr.off)
	mid := start + int(mr.excludeLen)
	end := mid + int(mr.dataLen)
	return Record{
		Position: mr.pos,
		UserID:   user,
		Seq:      h.firstSeq() + uint64(i),
		Service:  m.services[mr.service],
		Exclude:  string(c[start:mid]),
		TimeMs:   mr.timeMs,
		Data:     c[mid:end:end],
	}
}

// expireKeys forgets the keys remembered before oldestMs. Called with mu held.
func (m *Memory) expireKeys(oldestMs int64) {
	n := 0
	for n < len(m.keyOrder) && m.keyOrder[n].timeMs < oldestMs {
		delete(m.keys, m.keyOrder[n].k)
		n++
	}
	if n > 0 {
		m.keyOrder = m.keyOrder[n:]
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
