package frames

import (
	"strings"
	"sync"
	"testing"
)

func TestClientPID(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("p", MaxPIDBytes)
	for _, tc := range []struct {
		frame string
		want  string
		ok    bool
	}{
		{`{"pid":"c-1","type":"X"}`, "c-1", true},
		{`{"pid":"` + long + `"}`, long, true},
		{`{"pid":"` + long + `p"}`, "", false},
		{`{"pid":""}`, "", false},
		{`{"pid":17}`, "", false},
		{`{"pid":null}`, "", false},
		{`{"type":"X"}`, "", false},
		{`not json`, "", false},
		{`{"pid":"\u00e9"}`, "é", true},
	} {
		got, ok := ClientPID([]byte(tc.frame))
		if got != tc.want || ok != tc.ok {
			t.Errorf("ClientPID(%s) = %q, %v; want %q, %v", tc.frame, got, ok, tc.want, tc.ok)
		}
	}
}

func TestPIDsUnique(t *testing.T) {
	t.Parallel()
	a, b := NewPIDs(), NewPIDs()
	seen := sync.Map{}
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 1000 {
				if _, dup := seen.LoadOrStore(a.Next(), true); dup {
					t.Error("a pid repeated")
					return
				}
			}
		}()
	}
	wg.Wait()
	if pa, pb := a.Next(), b.Next(); pa == pb || len(pa) > MaxPIDBytes {
		t.Errorf("two generators gave %q and %q: want different pids of at most %d bytes", pa, pb, MaxPIDBytes)
	}
}
