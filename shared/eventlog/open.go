package eventlog

import (
	"fmt"

	"github.com/charla/charla/shared/bus"
)

// Open returns the log that goes with b: a Memory log for the in-process bus.
func Open(b bus.Bus, opt Options) (Log, error) {
	switch b.(type) {
	case *bus.InProcess:
		return NewMemory(opt), nil
	default:
		return nil, fmt.Errorf("eventlog: no log for bus %T", b)
	}
}
