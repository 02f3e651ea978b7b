//go:build !linux

package netpoll

// Poller is not available on this platform: New returns ErrUnsupported.
type Poller struct{}

// New returns ErrUnsupported.
func New() (*Poller, error) { return nil, ErrUnsupported }

// Wait is never reached: there is no Poller.
func (p *Poller) Wait(fd int, ready func()) error { return ErrUnsupported }

// Cancel is never reached: there is no Poller.
func (p *Poller) Cancel(fd int) bool { return false }
