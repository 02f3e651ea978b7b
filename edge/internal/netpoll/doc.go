// Package netpoll tells when an idle socket becomes readable without a goroutine
// waiting on it.
//
// Go's own network poller wakes a goroutine that is blocked in Read, so a server
// with a goroutine per connection pays that goroutine's stack (4 KiB and more) for
// every idle connection. A Poller instead keeps a one-shot registration per socket
// in an epoll instance of its own and calls the socket's callback once it is
// readable (or hung up); the caller then starts a goroutine to read. One goroutine
// serves every registration, and it runs only while at least one socket waits:
// with none it exits, so a process (or a test) with nothing parked has no
// goroutine of this package. That goroutine does not block a thread in epoll_wait:
// the epoll instance is itself registered with Go's poller, and the goroutine waits
// there for it to become readable, so a wake-up is scheduled like any network read.
//
// The file descriptor stays owned by its net.Conn: the caller must Cancel a wait
// before it closes the socket, so that a descriptor number the kernel reuses is
// never mistaken for the old socket. A callback may still run once after its
// socket was cancelled and even after its number was reused (the event was
// already taken); callers must treat a callback as a hint and read
// non-destructively to check.
//
// Only Linux is supported (epoll); elsewhere Default returns ErrUnsupported and
// callers keep their goroutine per connection. No library for this was served to
// the project (mailru/easygo and smallnest/epoller were not), so it is written on
// golang.org/x/sys/unix.
package netpoll
