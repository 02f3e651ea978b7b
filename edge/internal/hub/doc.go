// Package hub is the connection manager of the WebSocket edge (the original design's "customws").
//
// A ConnectionManager upgrades HTTP requests to WebSocket connections after an
// origin check and the application's authentication callback, keeps every live
// Connection in a user-keyed registry, and closes them all on Shutdown.
//
// # Concurrency
//
// Each Connection has at most one reader and one writer at a time, following
// the rules of gorilla/websocket's doc.go:
//
//   - the reader is the only goroutine that reads from the socket. The first one
//     (the read pump) calls OnConnect; readers call ProcessClientMessage for every
//     accepted message, one at a time and in order; the last one tears the
//     connection down, unregisters it and calls OnDisconnect exactly once. There
//     is one reader at a time, and none while the connection is parked (see
//     "Idle connections" below).
//   - the write pump is the only goroutine that writes data frames, pings and
//     the server's close frame. It runs only while there is something to write
//     and exits when the queue is empty; Send, the ping timer and Close start it
//     again (under the connection's mutex, so there is never more than one).
//     Close frames that gorilla writes itself (1009, the echo of a client's
//     close) use WriteControl, which is safe concurrently with the write pump.
//
// An on-demand write pump instead of a permanent one halves the goroutine
// stacks of an idle connection; the price is starting a goroutine per burst
// of outgoing messages (the runtime reuses goroutines, so it is cheap). The
// ping is a time.AfterFunc timer, which holds no goroutine while it waits.
//
// Send never blocks: it appends to a queue guarded by the connection's mutex and
// starts the write pump if needed. A queue that reaches SendChannelBuffer
// messages means the client does not read; that connection alone is closed
// with 1008, so a slow or dead socket never delays delivery to anybody else.
//
// Replies and events: Send is for replies and is never held. SendEvent is for
// server-initiated events: while the reader is inside ProcessClientMessage,
// events for that connection wait in a per-connection list, in order, and join
// the queue right after the callback returns, behind the reply it queued. So a
// command's reply precedes every event it causes on the same connection
// (docs/protocol.md §3.4) even when the service pushes the event before its RPC
// returns. Held events count against SendChannelBuffer. The list is nil unless
// an event arrived during a frame: an idle connection pays nothing for it, and
// no goroutine is involved.
//
// The registry is sharded by user id; each shard is guarded by its own RWMutex.
// A connection is registered before its read pump starts and unregistered after
// its last reader and its write pump have ended, before OnDisconnect. The application delivers through it:
// Connections(userID) and each connection's SendEvent. (The design's
// SendMessageToUser, one frame for all of a user's connections, does not fit
// protocol v2: every event carries a pid of its own per connection, docs/protocol.md
// §3, and a sequenced one passes that connection's cursor first.)
//
// Frames are the frames package's: error replies the hub sends itself (429 for the
// rate limit) are frames.MarshalError with the client's pid (frames.ClientPID) or a
// fresh server pid (Callbacks.GeneratePID, else a frames.PIDs of its own).
//
// # Idle connections
//
// A reader that waits for the client's next message holds a goroutine stack (4 KiB
// with gorilla's read path), which was a quarter of an idle connection's memory. So a
// connection whose client sends nothing for ParkAfter (1 s) parks (park.go): its
// socket is handed to a netpoll.Poller (one epoll instance and one goroutine for the
// process) and the reader's goroutine ends. The poller calls wake when the socket is
// readable; a timer calls it when the read deadline passes; closing calls it too.
// wake starts a new reader, which reads as before. A connection that is written to
// needs no reader: events, pings and replies go through the write pump as always.
//
// Two details make this work on top of gorilla, which has no "wait until readable":
//   - the wait before parking is a one-byte Peek of gorilla's read buffer (the hub
//     creates it and hands it to gorilla through the hijack), under a short read
//     deadline of the hub's. A timeout there is not gorilla's, so it does not break
//     the connection; the real deadline (PongWait) is put back before gorilla reads.
//   - between messages the reader consumes the client's pongs itself (a whole,
//     well-formed, masked pong frame in the buffer) and extends the deadline, as the
//     pong handler would. Read by gorilla, a pong would leave the reader waiting
//     inside NextReader for the next message, so every idle connection would hold a
//     goroutine again after its first ping. Any other frame is left to gorilla.
//
// Connections over TLS served by this process, and platforms without epoll, never park
// (ParkAfter < 0 turns it off everywhere).
//
// # Memory
//
// An idle connection holds a 512-byte read buffer, no write buffer (write buffers come
// from a sync.Pool only while a message is being written), an empty send queue (it
// grows on demand instead of preallocating SendChannelBuffer slots), two timers and,
// once parked, no goroutine. At 19,000 idle connections of the whole edge, RSS per
// connection went 15.0 → 10.0 KiB when parking came (charla-load -modes idle); before,
// running OnConnect (whose RPCs go deep) on a short-lived goroutine of its own had kept
// the read pump's stack at 4 KiB instead of 8 (21.0 → 15.2 KiB).
package hub
