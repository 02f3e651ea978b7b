// Package hist is a lock-free latency histogram for the load tool: log-linear buckets of
// microseconds (64 sub-buckets per power of two, so a percentile is within 1.6 % of the
// true value), recorded concurrently from every reader goroutine with atomic adds.
package hist

import (
	"math/bits"
	"sync/atomic"
	"time"
)

const (
	subBits    = 6
	subBuckets = 1 << subBits // linear buckets below 64 µs, and per power of two above
	maxExp     = 64 - subBits - 1
	numBuckets = subBuckets + (maxExp+1)*subBuckets
)

// Histogram counts durations. The zero value is ready to use; it must not be copied after
// first use. Record may be called from any number of goroutines at once.
type Histogram struct {
	counts [numBuckets]atomic.Uint64
	n      atomic.Uint64
	max    atomic.Int64 // microseconds
}

// index returns the bucket of a value in microseconds.
func index(us uint64) int {
	if us < subBuckets {
		return int(us)
	}
	exp := bits.Len64(us) - subBits - 1 // us>>exp is in [64, 128)
	return subBuckets + exp*subBuckets + int(us>>uint(exp)) - subBuckets
}

// upper returns the largest value in microseconds that falls in bucket i.
func upper(i int) uint64 {
	if i < subBuckets {
		return uint64(i)
	}
	exp := (i - subBuckets) / subBuckets
	m := uint64((i-subBuckets)%subBuckets + subBuckets)
	return (m+1)<<uint(exp) - 1
}

// Record adds one duration; negative durations count as zero.
func (h *Histogram) Record(d time.Duration) {
	us := d.Microseconds()
	if us < 0 {
		us = 0
	}
	h.counts[index(uint64(us))].Add(1)
	h.n.Add(1)
	for {
		m := h.max.Load()
		if us <= m || h.max.CompareAndSwap(m, us) {
			break
		}
	}
}

// Count returns how many durations were recorded.
func (h *Histogram) Count() uint64 { return h.n.Load() }

// Max returns the largest recorded duration (exact, to the microsecond).
func (h *Histogram) Max() time.Duration { return time.Duration(h.max.Load()) * time.Microsecond }

// Percentile returns the smallest bucket bound below which at least q (0..1] of the
// recorded durations fall, capped at Max; 0 when nothing was recorded. Call it once
// recording has stopped: it reads the buckets one by one.
func (h *Histogram) Percentile(q float64) time.Duration {
	n := h.n.Load()
	if n == 0 {
		return 0
	}
	rank := uint64(q*float64(n) + 0.999999)
	if rank < 1 {
		rank = 1
	}
	if rank > n {
		rank = n
	}
	var seen uint64
	for i := range h.counts {
		seen += h.counts[i].Load()
		if seen >= rank {
			us := int64(upper(i))
			if m := h.max.Load(); us > m {
				us = m
			}
			return time.Duration(us) * time.Microsecond
		}
	}
	return h.Max()
}

// Add adds every duration o recorded to h, as if h had recorded them too. Call it once
// o's recording has stopped.
func (h *Histogram) Add(o *Histogram) {
	for i := range o.counts {
		if c := o.counts[i].Load(); c > 0 {
			h.counts[i].Add(c)
		}
	}
	h.n.Add(o.n.Load())
	for om := o.max.Load(); ; {
		m := h.max.Load()
		if om <= m || h.max.CompareAndSwap(m, om) {
			break
		}
	}
}
