package eventlog

import (
	"context"
	"fmt"

	"github.com/charla/charla/shared/bus"
)

// Open returns the log that goes with b: Memory for the in-process bus (one process), the
// JetStream log with the default stream and subjects over the connection of a NATS bus.
func Open(ctx context.Context, b bus.Bus, opt Options) (Log, error) {
	switch b := b.(type) {
	case *bus.InProcess:
		return NewMemory(opt), nil
	case *bus.NATS:
		return OpenJetStream(ctx, b.Conn(), opt, opt.JetStream)
	default:
		return nil, fmt.Errorf("eventlog: no event log for a bus of type %T", b)
	}
}
