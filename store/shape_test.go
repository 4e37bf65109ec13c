package store

import (
	"slices"
	"testing"
)

func TestInList(t *testing.T) {
	for _, tt := range []struct {
		n     int
		first int
		want  string
	}{
		{1, 1, "$1"}, {2, 1, "$1, $2"}, {3, 2, "$2, $3, $4, $5"}, {4, 1, "$1, $2, $3, $4"}, {5, 1, "$1, $2, $3, $4, $5, $6, $7, $8"},
	} {
		vals := make([]any, tt.n)
		for i := range vals {
			vals[i] = i
		}
		q, args := inList(tt.first, vals)
		if q != tt.want || !slices.Equal(args[:tt.n], vals) || args[len(args)-1] != tt.n-1 {
			t.Errorf("inList(%d, %d values) = %q, %v", tt.first, tt.n, q, args)
		}
	}
}

func TestRenumber(t *testing.T) {
	if got := renumber("($1, $2, 0, $10)", 12); got != "($13, $14, 0, $22)" {
		t.Fatalf("renumber = %q", got)
	}
}
