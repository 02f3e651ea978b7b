package netpoll

import (
	"errors"
	"sync"
)

// ErrUnsupported is returned by Default where the platform has no poller.
var ErrUnsupported = errors.New("netpoll: not supported on this platform")

// ErrWaiting is returned by Wait for a descriptor that already waits.
var ErrWaiting = errors.New("netpoll: descriptor already waits")

// Default returns the process's poller, created on first use. Like Go's own
// network poller it is never closed: its goroutine runs only while some socket
// waits.
var Default = sync.OnceValues(New)
