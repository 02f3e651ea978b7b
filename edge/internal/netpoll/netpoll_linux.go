//go:build linux

package netpoll

import (
	"encoding/binary"
	"fmt"
	"os"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// Poller calls a callback once per Wait, when the descriptor becomes readable.
// Its methods are safe for concurrent use.
type Poller struct {
	epfd int // the epoll instance
	// epoll is epfd in Go's own network poller: the loop waits there for epfd to be
	// readable (some registration fired) like any network read, instead of blocking a
	// thread in epoll_wait outside the scheduler (which woke readers 70–100 µs later).
	epoll syscall.RawConn
	file  *os.File // epfd's File, held so that its finalizer never closes epfd
	wake  int      // an eventfd in it: Cancel writes it to let an idle loop exit

	mu      sync.Mutex
	waiting map[int32]func()
	running bool // the loop goroutine runs
}

// New returns a poller with an epoll instance of its own. Most callers want
// Default instead.
func New() (*Poller, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("netpoll: epoll_create1: %w", err)
	}
	wake, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		_ = unix.Close(epfd)
		return nil, fmt.Errorf("netpoll: eventfd: %w", err)
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(wake)}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, wake, &ev); err != nil {
		_ = unix.Close(epfd)
		_ = unix.Close(wake)
		return nil, fmt.Errorf("netpoll: epoll_ctl(eventfd): %w", err)
	}
	// Non-blocking, so that os.NewFile hands it to Go's poller (an epoll instance is
	// itself pollable: readable while it has events).
	if err := unix.SetNonblock(epfd, true); err != nil {
		_ = unix.Close(epfd)
		_ = unix.Close(wake)
		return nil, fmt.Errorf("netpoll: set epoll non-blocking: %w", err)
	}
	file := os.NewFile(uintptr(epfd), "netpoll")
	rc, err := file.SyscallConn()
	if err != nil {
		_ = file.Close()
		_ = unix.Close(wake)
		return nil, fmt.Errorf("netpoll: epoll in Go's poller: %w", err)
	}
	return &Poller{epfd: epfd, epoll: rc, file: file, wake: wake, waiting: make(map[int32]func())}, nil
}

// Wait registers fd until it is readable, hung up or in error, and then calls
// ready once, on the poller's goroutine: ready must return quickly (start a
// goroutine for the work). The registration is level-triggered, so data that
// arrived before the call fires it at once.
func (p *Poller) Wait(fd int, ready func()) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, dup := p.waiting[int32(fd)]; dup {
		return ErrWaiting
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP | unix.EPOLLONESHOT, Fd: int32(fd)}
	if err := unix.EpollCtl(p.epfd, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
		return fmt.Errorf("netpoll: epoll_ctl(add %d): %w", fd, err)
	}
	p.waiting[int32(fd)] = ready
	if !p.running {
		p.running = true
		go p.loop()
	}
	return nil
}

// Cancel ends fd's wait and reports whether it was still waiting; false means
// its callback has run or is about to. Call it before closing the descriptor.
func (p *Poller) Cancel(fd int) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.waiting[int32(fd)]; !ok {
		return false
	}
	delete(p.waiting, int32(fd))
	_ = unix.EpollCtl(p.epfd, unix.EPOLL_CTL_DEL, fd, nil)
	if len(p.waiting) == 0 {
		p.signal()
	}
	return true
}

// signal wakes the loop so that it sees an empty table and exits.
func (p *Poller) signal() {
	var one [8]byte
	binary.NativeEndian.PutUint64(one[:], 1)
	_, _ = unix.Write(p.wake, one[:])
}

// loop waits for events and runs the callbacks of the ready descriptors; it
// exits once no descriptor waits. It takes events without blocking (epoll_wait
// with a zero timeout) and, when there are none, waits in Go's poller for the
// epoll instance to become readable.
func (p *Poller) loop() {
	events := make([]unix.EpollEvent, 128)
	var ready []func()
	for {
		var (
			n   int
			err error
		)
		rerr := p.epoll.Read(func(fd uintptr) bool {
			n, err = unix.EpollWait(int(fd), events, 0)
			if err == unix.EINTR {
				n, err = 0, nil
			}
			return n > 0 || err != nil
		})
		if err == nil {
			err = rerr
		}
		p.mu.Lock()
		if err != nil {
			// Cannot happen with a valid epoll instance. Wake every waiter so
			// that its reader runs (and reads in the ordinary way) rather than
			// never waking.
			for fd, cb := range p.waiting {
				_ = unix.EpollCtl(p.epfd, unix.EPOLL_CTL_DEL, int(fd), nil)
				ready = append(ready, cb)
			}
			clear(p.waiting)
		}
		for _, ev := range events[:max(n, 0)] {
			if ev.Fd == int32(p.wake) {
				var buf [8]byte
				_, _ = unix.Read(p.wake, buf[:])
				continue
			}
			if cb, ok := p.waiting[ev.Fd]; ok {
				delete(p.waiting, ev.Fd)
				_ = unix.EpollCtl(p.epfd, unix.EPOLL_CTL_DEL, int(ev.Fd), nil)
				ready = append(ready, cb)
			}
		}
		done := len(p.waiting) == 0
		if done {
			p.running = false
		}
		p.mu.Unlock()
		for i, cb := range ready {
			cb()
			ready[i] = nil
		}
		ready = ready[:0]
		if done {
			return
		}
	}
}
