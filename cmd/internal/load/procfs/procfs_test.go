package procfs

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"
)

func TestParseRSS(t *testing.T) {
	t.Parallel()
	status := "Name:\tcharla\nVmPeak:\t  900 kB\nVmRSS:\t   12345 kB\nThreads:\t9\n"
	got, err := ParseRSS([]byte(status))
	if err != nil {
		t.Fatal(err)
	}
	if want := int64(12345 * 1024); got != want {
		t.Errorf("ParseRSS = %d, want %d", got, want)
	}
	for _, bad := range []string{"Name:\tx\n", "VmRSS:\t12 MB\n", "VmRSS:\tlots kB\n"} {
		if _, err := ParseRSS([]byte(bad)); err == nil {
			t.Errorf("ParseRSS(%q): no error", bad)
		}
	}
}

func TestParseCPU(t *testing.T) {
	t.Parallel()
	// The command name holds a space and a ')' to prove fields count after the last one.
	stat := "4242 (my (odd) srv) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 130 0 0 20 0 9 0 1000 0 0\n"
	got, err := ParseCPU([]byte(stat))
	if err != nil {
		t.Fatal(err)
	}
	if want := 3800 * time.Millisecond; got != want {
		t.Errorf("ParseCPU = %v, want %v (250+130 ticks)", got, want)
	}
	for _, bad := range []string{"4242 no parens S 1", "1 (x) S 1 2 3", "1 (x) S 1 1 1 0 -1 0 0 0 0 0 a b 0"} {
		if _, err := ParseCPU([]byte(bad)); err == nil {
			t.Errorf("ParseCPU(%q): no error", bad)
		}
	}
}

func TestOwnProcess(t *testing.T) {
	t.Parallel()
	s, err := Read([]int{os.Getpid()})
	if err != nil {
		t.Fatal(err)
	}
	if s.RSS <= 0 {
		t.Errorf("own RSS = %d, want > 0", s.RSS)
	}
	if _, err := Read([]int{-1}); err == nil {
		t.Error("Read of pid -1: no error")
	}
}

func TestFindByName(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	for pid, comm := range map[string]string{"10": "mariadbd\n", "11": "bash\n", "12": "mariadbd\n", "self": "mariadbd\n"} {
		if err := os.MkdirAll(filepath.Join(root, pid), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, pid, "comm"), []byte(comm), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := findByName(root, "mariadbd")
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(got)
	if want := []int{10, 12}; !slices.Equal(got, want) {
		t.Errorf("findByName = %v, want %v", got, want)
	}
}

// TestParseStatusOfARealProcess reads a /proc/<pid>/status captured from nats-server on
// the development machine.
func TestParseStatusOfARealProcess(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile("testdata/status-nats-server.txt")
	if err != nil {
		t.Fatal(err)
	}
	rss, err := ParseRSS(b)
	if err != nil || rss != 12644*1024 {
		t.Errorf("ParseRSS = %d, %v; want %d", rss, err, 12644*1024)
	}
	threads, err := ParseThreads(b)
	if err != nil || threads != 9 {
		t.Errorf("ParseThreads = %d, %v; want 9", threads, err)
	}
	for _, bad := range []string{"Name:\tx\n", "Threads:\tmany\n", "Threads:\t0\n"} {
		if _, err := ParseThreads([]byte(bad)); err == nil {
			t.Errorf("ParseThreads(%q): no error", bad)
		}
	}
}

// TestOpenFilesCountsOwnDescriptors opens files in this process and watches the count of
// /proc/self/fd follow. Not parallel: other tests open files too.
func TestOpenFilesCountsOwnDescriptors(t *testing.T) {
	before, err := OpenFiles(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	var files []*os.File
	for range 5 {
		f, err := os.Open(os.DevNull)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
	}
	during, err := OpenFiles(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		f.Close()
	}
	after, err := OpenFiles(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if during != before+5 || after != before {
		t.Errorf("open files %d, then %d with 5 more open, then %d; want %d, %d, %d", before, during, after, before, before+5, before)
	}
	if th, err := Threads(os.Getpid()); err != nil || th < 1 {
		t.Errorf("own threads = %d, %v; want ≥ 1", th, err)
	}
	if _, err := OpenFiles(-1); err == nil {
		t.Error("OpenFiles(-1): no error")
	}
}

func TestCountEntries(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for i := range 2100 { // more than one Readdirnames batch
		if err := os.WriteFile(filepath.Join(dir, strconv.Itoa(i)), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := countEntries(dir); err != nil || n != 2100 {
		t.Errorf("countEntries = %d, %v; want 2100", n, err)
	}
}
