package eventlog

import "encoding/binary"

// byteStore holds the memory log's events, each once however many users it went to: a
// short header (storedEvent's key, service and lengths) then the exclude and data bytes,
// appended to chunks in the order they come. A chunk counts the held records that use it
// and is released when the last of them is dropped; Memory.retire empties chunks that
// have grown old. Chunks are mapped outside the Go heap where the system allows
// (chunkmem_unix.go) and unmapped on release, so nothing outside the store may keep a
// slice of one: Memory hands out copies (memUser.at).
type byteStore struct {
	chunks []*byteChunk // oldest first; chunks[i] is chunk number first+i
	first  uint32       // wraps after 2³² chunks (256 TiB of events); the arithmetic wraps with it
	mapped int          // chunks held that are mapped (at most maxMappedChunks)
}

// maxMappedChunks bounds the mappings the store holds at once (1 GiB of 64 KiB chunks);
// further chunks come from the heap. Each mapping may be an area of its own in the
// kernel, which allows a process 65,530 by default (vm.max_map_count), and the Go
// runtime needs some of them for its heap. A variable so that a test can lower it.
var maxMappedChunks = 16 << 10

// byteChunk is one chunk of the store. Its fields other than mem and buf hold no pointers
// per record, so the collector marks a chunk without scanning its records.
type byteChunk struct {
	mem       []byte  // the chunk's memory as allocChunk returned it; nil once released
	mapped    bool    // mem is outside the Go heap and goes back with freeChunk
	buf       []byte  // mem[:bytes used]
	refs      int     // held records whose event is in buf
	users     []int64 // the user of every record that used buf, repeats included (for retire)
	maxPos    uint64  // the highest position of those records
	writtenMs int64   // when events were last added
}

// byteLoc is where an event is: the chunk number and the offset of its header.
type byteLoc struct {
	chunk uint32
	off   uint32
}

// storedEvent is an event as the store keeps it.
type storedEvent struct {
	// key is the hash of the event's Key (Memory.keyHash, never 0), 0 when it had none.
	key     uint64
	service uint16 // index into Memory.services
	exclude []byte
	data    []byte
	size    int // of header, exclude and data together
}

// byteChunkSize is a chunk's size; an event larger than that gets a chunk of its own.
const byteChunkSize = 64 << 10

// add stores an event and returns where. The caller refs the chunk for every record that
// uses it.
func (s *byteStore) add(key uint64, service uint16, exclude string, data []byte, nowMs int64) byteLoc {
	var h [1 + 8 + 3*binary.MaxVarintLen32]byte
	hdr := append(h[:0], 0)
	if key != 0 {
		hdr[0] = 1
		hdr = binary.LittleEndian.AppendUint64(hdr, key)
	}
	hdr = binary.AppendUvarint(hdr, uint64(service))
	hdr = binary.AppendUvarint(hdr, uint64(len(exclude)))
	hdr = binary.AppendUvarint(hdr, uint64(len(data)))
	c, loc := s.room(len(hdr)+len(exclude)+len(data), nowMs)
	c.buf = append(c.buf, hdr...)
	c.buf = append(c.buf, exclude...)
	c.buf = append(c.buf, data...)
	return loc
}

// copyIn stores again an event held at from (see Memory.retire).
func (s *byteStore) copyIn(from byteLoc, nowMs int64) byteLoc {
	ev := s.get(from)
	b := s.chunk(from.chunk).buf[from.off:][:ev.size]
	c, loc := s.room(len(b), nowMs)
	c.buf = append(c.buf, b...)
	return loc
}

// room returns the chunk that n more bytes go to, starting a new one when the newest is
// full (or released), and where they will start.
func (s *byteStore) room(n int, nowMs int64) (*byteChunk, byteLoc) {
	var c *byteChunk
	if len(s.chunks) > 0 {
		c = s.chunks[len(s.chunks)-1]
	}
	if c == nil || c.buf == nil || cap(c.buf)-len(c.buf) < n {
		var mem []byte
		mapped := false
		if s.mapped < maxMappedChunks {
			mem, mapped = allocChunk(max(byteChunkSize, n))
		} else {
			mem = make([]byte, max(byteChunkSize, n))
		}
		if mapped {
			s.mapped++
		}
		c = &byteChunk{mem: mem, mapped: mapped, buf: mem[:0]}
		s.chunks = append(s.chunks, c)
	}
	c.writtenMs = nowMs
	return c, byteLoc{chunk: s.first + uint32(len(s.chunks)-1), off: uint32(len(c.buf))}
}

func (s *byteStore) chunk(n uint32) *byteChunk { return s.chunks[n-s.first] }

// ref counts a record of user at position pos whose event is in chunk.
func (s *byteStore) ref(chunk uint32, user int64, pos uint64) {
	c := s.chunk(chunk)
	c.refs++
	c.users = append(c.users, user)
	c.maxPos = max(c.maxPos, pos)
}

// release uncounts a record whose event is in chunk; the chunk's last record releases
// it, and released chunks at the front are forgotten.
func (s *byteStore) release(chunk uint32) {
	c := s.chunk(chunk)
	if c.refs--; c.refs > 0 {
		return
	}
	if c.mapped {
		freeChunk(c.mem)
		s.mapped--
	}
	c.mem, c.buf, c.users = nil, nil, nil
	for len(s.chunks) > 0 && s.chunks[0].buf == nil {
		s.chunks[0] = nil
		s.chunks = s.chunks[1:]
		s.first++
	}
}

// get returns the event at loc. Its exclude and data alias the store: they are valid only
// while mu is held and the chunk is not released.
func (s *byteStore) get(loc byteLoc) storedEvent {
	b := s.chunk(loc.chunk).buf[loc.off:]
	var ev storedEvent
	i := 1
	if b[0] == 1 {
		ev.key = binary.LittleEndian.Uint64(b[1:])
		i += 8
	}
	uvarint := func() int {
		v, n := binary.Uvarint(b[i:])
		i += n
		return int(v)
	}
	ev.service = uint16(uvarint())
	excludeLen := uvarint()
	dataLen := uvarint()
	ev.exclude = b[i : i+excludeLen]
	i += excludeLen
	ev.data = b[i : i+dataLen : i+dataLen]
	ev.size = i + dataLen
	return ev
}
