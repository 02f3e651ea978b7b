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
//   - the read pump is the only goroutine that reads from the socket. It lives as
//     long as the connection: it calls OnConnect, then ProcessClientMessage for
//     every accepted message, one at a time and in order, and finally tears the
//     connection down, unregisters it and calls OnDisconnect exactly once.
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
// server-initiated events: while the read pump is inside ProcessClientMessage,
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
// both pumps have ended, before OnDisconnect. The application delivers through it:
// Connections(userID) and each connection's SendEvent. (The design's
// SendMessageToUser, one frame for all of a user's connections, does not fit
// protocol v2: every event carries a pid of its own per connection, docs/protocol.md
// §3, and a sequenced one passes that connection's cursor first.)
//
// Frames are the frames package's: error replies the hub sends itself (429 for the
// rate limit) are frames.MarshalError with the client's pid (frames.ClientPID) or a
// fresh server pid (Callbacks.GeneratePID, else a frames.PIDs of its own).
//
// # Memory
//
// An idle connection holds a 512-byte read buffer, no write buffer (write buffers come
// from a sync.Pool only while a message is being written), an empty send queue (it
// grows on demand instead of preallocating SendChannelBuffer slots), one timer and
// one goroutine stack: the read pump's, kept at 4 KiB by running OnConnect (whose RPCs
// go deep) on a short-lived goroutine of its own while the read pump waits. Run on the
// read pump, it grew that stack to 8 KiB for the connection's life: at 19,000 idle
// connections the stacks took 165 MB, now 80 MB (RSS per connection 21.0 → 15.2 KiB; with
// the smaller read buffer 14.0–15.7 KiB, depending on where the GC cycle stands).
package hub
