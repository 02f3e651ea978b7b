package frames

import (
	"errors"
	"strconv"
)

// Resume outcomes of CONNECTED.
const (
	ResumeNone   = "none"
	ResumeOK     = "ok"
	ResumeFailed = "failed"
)

// Connected is the payload of CONNECTED, the first frame of every connection.
type Connected struct {
	UserID       int64  `json:"userId"`
	ConnectionID string `json:"connectionId"`
	LastSeq      uint64 `json:"lastSeq"`
	ExpiresAt    int64  `json:"expiresAt"`
	Resume       string `json:"resume"`
}

// SeqEventFrame is EventFrame for a sequenced event: seq goes in the envelope, beside pid.
func SeqEventFrame(pid, typ string, seq uint64, payload []byte) []byte {
	b := make([]byte, 0, len(pid)+len(typ)+len(payload)+48)
	b = append(b, `{"pid":`...)
	b = strconv.AppendQuote(b, pid)
	b = append(b, `,"type":"`...)
	b = append(b, typ...)
	b = append(b, `","seq":`...)
	b = strconv.AppendUint(b, seq, 10)
	b = append(b, `,"payload":`...)
	b = append(b, payload...)
	b = append(b, '}')
	return b
}

// ParseResume reads the resume query value (docs/protocol.md §8.3): a non-negative
// decimal integer.
func ParseResume(v string) (uint64, error) {
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return 0, errInvalidResume
	}
	return n, nil
}

var errInvalidResume = errors.New("resume: must be a non-negative integer (the highest seq seen)")
