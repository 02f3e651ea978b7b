// Package hub is the connection manager of the WebSocket edge (seed §3, "customws").
//
// A ConnectionManager upgrades HTTP requests to WebSocket connections after an
// origin check and the application's authentication callback, keeps every live
// Connection in a user-keyed registry, and closes them all on Shutdown.
//
// # Concurrency
//
// Each Connection owns exactly two goroutines, following the rules of
// gorilla/websocket's doc.go (one concurrent reader, one concurrent writer):
//
//   - the read pump is the only goroutine that reads from the socket. It calls
//     OnConnect, then ProcessClientMessage for every accepted message, one at a time
//     and in order, and finally tears the connection down, unregisters it and calls
//     OnDisconnect exactly once.
//   - the write pump is the only goroutine that writes data frames. It drains the
//     connection's send queue, pings every PingPeriod and writes the close frame.
//     Close frames that gorilla writes itself (1009, echoes of the client's close)
//     use WriteControl, which is safe to call concurrently with the write pump.
//
// Send never blocks: it appends to a queue guarded by the connection's mutex and
// wakes the write pump. A queue that reaches SendChannelBuffer messages means the
// client does not read; that connection alone is closed with 1008, so a slow or
// dead socket never delays delivery to anybody else.
//
// The registry is sharded by user id; each shard is guarded by its own RWMutex.
// Register and unregister happen on the connection's own goroutines, so the
// registry never holds a connection whose pumps have ended.
//
// # Memory
//
// An idle connection holds a 1 KiB read buffer, no write buffer (write buffers come
// from a sync.Pool only while a message is being written), an empty send queue (it
// grows on demand instead of preallocating SendChannelBuffer slots), one ticker, and
// the two goroutine stacks.
package hub
