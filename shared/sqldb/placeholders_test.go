package sqldb

import (
	"fmt"
	"testing"
)

func TestPaddedIn(t *testing.T) {
	for _, tc := range []struct {
		vals      []int64
		wantMarks string
		wantArgs  string
	}{
		{[]int64{7}, "?", "[7]"},
		{[]int64{7, 8}, "?, ?", "[7 8]"},
		{[]int64{7, 8, 9}, "?, ?, ?, ?", "[7 8 9 9]"},
		{[]int64{1, 2, 3, 4, 5}, "?, ?, ?, ?, ?, ?, ?, ?", "[1 2 3 4 5 5 5 5]"},
	} {
		marks, args := PaddedIn(tc.vals, 1)
		if marks != tc.wantMarks || fmt.Sprint(args) != tc.wantArgs {
			t.Errorf("PaddedIn(%v) = %q, %v; want %q, %s", tc.vals, marks, args, tc.wantMarks, tc.wantArgs)
		}
		if cap(args) != len(args)+1 {
			t.Errorf("PaddedIn(%v, 1): cap %d, want room for one more than %d", tc.vals, cap(args), len(args))
		}
	}
	if marks, args := PaddedIn([]string{"a", "b", "c"}, 0); marks != "?, ?, ?, ?" || fmt.Sprint(args) != "[a b c c]" {
		t.Errorf("PaddedIn(strings) = %q, %v", marks, args)
	}
}
