package frames

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"strconv"
	"sync/atomic"
)

// ClientPID returns the pid of a client frame when it carries a valid one (a string of
// 1–64 bytes, docs/protocol.md §3.2). It is for replies to a frame refused before it is
// parsed (the rate limit); ParseFrame reads the pid of the others.
func ClientPID(data []byte) (string, bool) {
	var f struct {
		PID json.RawMessage `json:"pid"`
	}
	if json.Unmarshal(data, &f) != nil || len(f.PID) == 0 || f.PID[0] != '"' {
		return "", false
	}
	var pid string
	if json.Unmarshal(f.PID, &pid) != nil || len(pid) < 1 || len(pid) > MaxPIDBytes {
		return "", false
	}
	return pid, true
}

// PIDs generates server pids (docs/protocol.md §3: one per event per connection, and for
// replies to frames without a usable pid): a random per-process prefix and a counter, so
// a pid never repeats within a process and two edges' pids differ with high probability.
// Safe for concurrent use.
type PIDs struct {
	prefix string
	n      atomic.Uint64
}

// NewPIDs returns a generator with a fresh random prefix.
func NewPIDs() *PIDs {
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	return &PIDs{prefix: "s" + hex.EncodeToString(b) + "-"}
}

// Next returns a fresh pid.
func (p *PIDs) Next() string { return p.prefix + strconv.FormatUint(p.n.Add(1), 36) }
