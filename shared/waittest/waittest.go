// Package waittest waits in tests for a condition that another goroutine makes true,
// polling it with a generous bound, instead of sleeping a guessed time. Only tests import
// it.
package waittest

import (
	"testing"
	"time"
)

// Bound is how long Until polls before it fails the test: far above any wait a passing
// test has, so it only ends a test that would otherwise hang.
const Bound = 30 * time.Second

// Until polls cond every few milliseconds until it holds, and fails tb with "timed out
// waiting for <what>" when Bound passes first.
func Until(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(Bound)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}
