//go:build unix

package eventlog

import "syscall"

// allocChunk returns n bytes of zeroed memory for a byte chunk, mapped from the operating
// system outside the Go heap: the history's event bytes are long-lived and pointer-free,
// and in the heap the collector's headroom (GOGC) would have the process hold about
// twice them; mapped, they count once, and releasing a chunk gives its memory back at
// once. When the mapping fails the chunk comes from the heap instead (mapped false).
func allocChunk(n int) (mem []byte, mapped bool) {
	mem, err := syscall.Mmap(-1, 0, n, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
	if err != nil {
		return make([]byte, n), false
	}
	return mem, true
}

// freeChunk returns a mapped chunk's memory to the operating system. Nothing may refer
// to mem afterwards (Memory hands out copies of the bytes, never the chunk's own).
func freeChunk(mem []byte) {
	// Munmap fails only for a slice Mmap did not return, which would be a bug in the
	// store; the memory then stays mapped, which is safe.
	_ = syscall.Munmap(mem)
}
