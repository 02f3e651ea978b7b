// Package soak is what the load tool's soak mode watches of a system under a long steady
// load: per process, resident memory, threads and open files from /proc and goroutines
// from its Prometheus /metrics (go_goroutines), sampled at intervals; and the verdict on
// those series, "flat" when the figures at the end are within stated bounds of the
// figures just after the warm-up.
package soak

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"time"

	"github.com/charla/charla/cmd/internal/load/procfs"
)

// Role says what a process is to the verdict: only servers must be flat.
type Role string

// Roles of the watched processes.
const (
	Server   Role = "server"    // a Charla process: the verdict applies
	Database Role = "database"  // MariaDB: watched, its buffer pool may grow with the data
	Bus      Role = "bus"       // NATS: watched, its streams grow until their retention
	LoadTool Role = "load tool" // this tool: watched, so a leak of its own is not blamed on the server
)

// Proc is one watched process.
type Proc struct {
	Name string
	PID  int
	Role Role
	// MetricsURL is the process's Prometheus endpoint (http://127.0.0.1:8090/metrics), read
	// for go_goroutines; empty when it has none. The load tool counts its own goroutines.
	MetricsURL string
	// Log is the file the process writes its output to, when the tool started it (where
	// a goroutine dump lands).
	Log string
}

// Sample is one process at one moment; -1 marks a figure that could not be read.
type Sample struct {
	RSS        int64 // bytes
	Threads    int
	FDs        int // entries of /proc/<pid>/fd
	Goroutines int
	// Err says why a figure is missing (the process exited, /metrics did not answer).
	Err string
}

// metricsTimeout bounds one GET of /metrics.
const metricsTimeout = 5 * time.Second

// Read samples p. A figure that cannot be read is -1 and the reason is in Err; Read itself
// never fails, so a dying process shows up in the series instead of stopping the run.
func Read(ctx context.Context, hc *http.Client, p Proc) Sample {
	s := Sample{RSS: -1, Threads: -1, FDs: -1, Goroutines: -1}
	var errs []error
	if rss, err := procfs.RSS(p.PID); err == nil {
		s.RSS = rss
	} else {
		errs = append(errs, err)
	}
	if n, err := procfs.Threads(p.PID); err == nil {
		s.Threads = n
	} else {
		errs = append(errs, err)
	}
	if n, err := procfs.OpenFiles(p.PID); err == nil {
		s.FDs = n
	} else {
		errs = append(errs, err)
	}
	switch {
	case p.PID == os.Getpid():
		s.Goroutines = runtime.NumGoroutine()
	case p.MetricsURL != "":
		if n, err := Goroutines(ctx, hc, p.MetricsURL); err == nil {
			s.Goroutines = n
		} else {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		s.Err = err.Error()
	}
	return s
}

// ReadAll samples every process in order.
func ReadAll(ctx context.Context, hc *http.Client, procs []Proc) []Sample {
	out := make([]Sample, len(procs))
	for i, p := range procs {
		out[i] = Read(ctx, hc, p)
	}
	return out
}

// Goroutines reads go_goroutines from a Prometheus endpoint.
func Goroutines(ctx context.Context, hc *http.Client, url string) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, metricsTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, fmt.Errorf("goroutines: %w", err)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, fmt.Errorf("goroutines: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("goroutines: GET %s: HTTP %d", url, resp.StatusCode)
	}
	v, err := ParseGauge(resp.Body, "go_goroutines")
	if err != nil {
		return 0, fmt.Errorf("goroutines: GET %s: %w", url, err)
	}
	return int(v), nil
}

// ParseGauge returns the value of the first sample of metric name in the Prometheus text
// exposition format (with or without labels; a trailing timestamp is ignored). Comment
// lines and other metrics, such as name_total or name_bucket, are skipped.
func ParseGauge(r io.Reader, name string) (float64, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Bytes()
		rest, ok := bytes.CutPrefix(line, []byte(name))
		if !ok || len(rest) == 0 || (rest[0] != ' ' && rest[0] != '{') {
			continue
		}
		if rest[0] == '{' {
			// Label values may hold '}' inside quotes; find the closing brace outside them.
			end, quoted := -1, false
			for i := 1; i < len(rest) && end < 0; i++ {
				switch {
				case rest[i] == '\\' && quoted:
					i++
				case rest[i] == '"':
					quoted = !quoted
				case rest[i] == '}' && !quoted:
					end = i
				}
			}
			if end < 0 {
				return 0, fmt.Errorf("%s: unterminated labels in %q", name, line)
			}
			rest = rest[end+1:]
		}
		f := bytes.Fields(rest)
		if len(f) == 0 {
			return 0, fmt.Errorf("%s: no value in %q", name, line)
		}
		v, err := strconv.ParseFloat(string(f[0]), 64)
		if err != nil {
			return 0, fmt.Errorf("%s: value %q: %w", name, f[0], err)
		}
		return v, nil
	}
	if err := sc.Err(); err != nil {
		return 0, fmt.Errorf("%s: %w", name, err)
	}
	return 0, fmt.Errorf("no sample of %s", name)
}
