//go:build !unix

package eventlog

// allocChunk returns n bytes for a byte chunk from the Go heap (no anonymous mappings on
// this system; see chunkmem_unix.go).
func allocChunk(n int) (mem []byte, mapped bool) { return make([]byte, n), false }

// freeChunk is not called for heap chunks.
func freeChunk([]byte) {}
