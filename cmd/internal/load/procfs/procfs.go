// Package procfs reads what the load tool measures of a server from Linux's /proc: resident
// memory (VmRSS of /proc/<pid>/status), threads (Threads of the same file), CPU time
// (utime + stime of /proc/<pid>/stat) and open files (the entries of /proc/<pid>/fd), and
// finds a process by its command name (the database server).
package procfs

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// userHZ is the unit of the times in /proc/<pid>/stat: USER_HZ, 100 on every Linux the
// kernel ABI promises to userland.
const userHZ = 100

// RSS returns the resident set size of a process in bytes.
func RSS(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("rss of pid %d: %w", pid, err)
	}
	n, err := ParseRSS(b)
	if err != nil {
		return 0, fmt.Errorf("rss of pid %d: %w", pid, err)
	}
	return n, nil
}

// ParseRSS returns VmRSS in bytes from the text of /proc/<pid>/status.
func ParseRSS(status []byte) (int64, error) {
	for line := range bytes.Lines(status) {
		rest, ok := bytes.CutPrefix(line, []byte("VmRSS:"))
		if !ok {
			continue
		}
		f := strings.Fields(string(rest))
		if len(f) != 2 || f[1] != "kB" {
			return 0, fmt.Errorf("VmRSS line %q: want \"<n> kB\"", bytes.TrimSpace(line))
		}
		kb, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("VmRSS value %q: %w", f[0], err)
		}
		return kb * 1024, nil
	}
	return 0, errors.New("no VmRSS line (a zombie or kernel thread?)")
}

// Threads returns how many threads a process has.
func Threads(pid int) (int, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("threads of pid %d: %w", pid, err)
	}
	n, err := ParseThreads(b)
	if err != nil {
		return 0, fmt.Errorf("threads of pid %d: %w", pid, err)
	}
	return n, nil
}

// ParseThreads returns the Threads count from the text of /proc/<pid>/status.
func ParseThreads(status []byte) (int, error) {
	for line := range bytes.Lines(status) {
		rest, ok := bytes.CutPrefix(line, []byte("Threads:"))
		if !ok {
			continue
		}
		n, err := strconv.Atoi(string(bytes.TrimSpace(rest)))
		if err != nil || n < 1 {
			return 0, fmt.Errorf("Threads line %q: want a positive count", bytes.TrimSpace(line))
		}
		return n, nil
	}
	return 0, errors.New("no Threads line")
}

// OpenFiles returns how many file descriptors a process holds open: the entries of
// /proc/<pid>/fd (sockets included). Reading another user's process needs privileges.
func OpenFiles(pid int) (int, error) {
	return countEntries(fmt.Sprintf("/proc/%d/fd", pid))
}

// countEntries counts the entries of a directory without sorting or statting them.
func countEntries(dir string) (int, error) {
	f, err := os.Open(dir)
	if err != nil {
		return 0, fmt.Errorf("open files: %w", err)
	}
	defer f.Close()
	n := 0
	for {
		names, err := f.Readdirnames(1024)
		n += len(names)
		if errors.Is(err, io.EOF) {
			return n, nil
		}
		if err != nil {
			return 0, fmt.Errorf("open files: read %s: %w", dir, err)
		}
	}
}

// CPU returns the user plus system CPU time a process has used.
func CPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("cpu of pid %d: %w", pid, err)
	}
	d, err := ParseCPU(b)
	if err != nil {
		return 0, fmt.Errorf("cpu of pid %d: %w", pid, err)
	}
	return d, nil
}

// ParseCPU returns utime + stime from the text of /proc/<pid>/stat. The command name in
// parentheses may hold spaces and parentheses, so fields are counted after the last ')'.
func ParseCPU(stat []byte) (time.Duration, error) {
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, errors.New("stat: no ')' after the command name")
	}
	f := strings.Fields(string(stat[i+1:]))
	// f[0] is field 3 (state); utime and stime are fields 14 and 15.
	if len(f) < 13 {
		return 0, fmt.Errorf("stat: %d fields after the command name, want at least 13", len(f))
	}
	var ticks int64
	for _, s := range f[11:13] {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("stat: utime/stime %q: %w", s, err)
		}
		ticks += n
	}
	return time.Duration(ticks) * time.Second / userHZ, nil
}

// FindByName returns the pids of the processes whose command name (/proc/<pid>/comm) is
// name, such as "mariadbd" or "mysqld".
func FindByName(name string) ([]int, error) {
	return findByName("/proc", name)
}

func findByName(root, name string) ([]int, error) {
	dirs, err := filepath.Glob(filepath.Join(root, "[0-9]*"))
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", root, err)
	}
	var pids []int
	for _, d := range dirs {
		pid, err := strconv.Atoi(filepath.Base(d))
		if err != nil {
			continue
		}
		comm, err := os.ReadFile(filepath.Join(d, "comm"))
		if err != nil {
			continue // the process ended meanwhile
		}
		if strings.TrimSpace(string(comm)) == name {
			pids = append(pids, pid)
		}
	}
	return pids, nil
}

// Sample is the summed RSS and CPU time of a set of processes at one moment.
type Sample struct {
	RSS int64
	CPU time.Duration
}

// Read samples every pid and sums them; a pid that cannot be read is an error.
func Read(pids []int) (Sample, error) {
	var s Sample
	for _, pid := range pids {
		rss, err := RSS(pid)
		if err != nil {
			return Sample{}, err
		}
		cpu, err := CPU(pid)
		if err != nil {
			return Sample{}, err
		}
		s.RSS += rss
		s.CPU += cpu
	}
	return s, nil
}
