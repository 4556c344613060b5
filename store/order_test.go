package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/oops-deploy/oops/store"
	"github.com/oops-deploy/oops/store/dir"
)

// TestListOrder: newest first, with publish times to the sub-second; ties
// fall by commit time, then by git ancestry (a descendant first) when the
// index is told it, and only then by SHA.
func TestListOrder(t *testing.T) {
	type rel struct {
		n         int
		published time.Duration // after t0
		committed time.Duration // after t0
	}
	tests := []struct {
		name     string
		rels     []rel
		children map[int][]int // parent -> children, for Ancestor
		want     string
	}{
		{"sub-second publish times", []rel{{2, 100 * time.Millisecond, 0}, {1, 900 * time.Millisecond, 0}, {3, 500 * time.Millisecond, 0}}, nil,
			short(1, 3, 2)},
		{"same publish time: newer commit first", []rel{{1, 0, 2 * time.Minute}, {2, 0, 1 * time.Minute}, {3, 0, 3 * time.Minute}}, nil,
			short(3, 1, 2)},
		{"same publish and commit time: descendant first", []rel{{1, 0, 0}, {2, 0, 0}, {3, 0, 0}}, map[int][]int{2: {3}, 3: {1}},
			short(1, 3, 2)},
		{"unrelated ties: by SHA", []rel{{1, 0, 0}, {2, 0, 0}, {3, 0, 0}}, map[int][]int{}, short(3, 2, 1)},
		{"publish time wins over ancestry", []rel{{1, 0, 0}, {2, time.Millisecond, 0}}, map[int][]int{2: {1}}, short(2, 1)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			x := store.NewIndex(dir.New(t.TempDir()), "app")
			for _, r := range tc.rels {
				in := input(r.n, "body")
				in.Now = t0.Add(r.published)
				in.Info.Time = t0.Add(r.committed)
				publish(t, x, in)
			}
			if tc.children != nil {
				x.Generation = func(s string) (int, bool) { return generation(tc.children, s) }
			}
			if got := commits(list(t, x, 0)); got != tc.want {
				t.Fatalf("order %s, want %s", got, tc.want)
			}
		})
	}
	// Published times keep their sub-second part in the metadata.
	x := store.NewIndex(dir.New(t.TempDir()), "app")
	in := input(1, "body")
	in.Now = t0.Add(123456789 * time.Nanosecond)
	r, _ := publish(t, x, in)
	got, err := x.Get(context.Background(), r.Commit)
	if err != nil || !got.Published.Equal(in.Now) {
		t.Fatalf("published %v, %v; want %v", got.Published, err, in.Now)
	}
}

func short(ns ...int) string {
	var rels []string
	for _, n := range ns {
		rels = append(rels, sha(n)[:7])
	}
	s := ""
	for i, r := range rels {
		if i > 0 {
			s += ","
		}
		s += r
	}
	return s
}

// generation numbers commit s in the graph children (by test number):
// 1 for a root, else one more than its highest parent; false when s is
// not in the graph.
func generation(children map[int][]int, s string) (int, bool) {
	inGraph := false
	g := 1
	for p, cs := range children {
		if sha(p) == s {
			inGraph = true
		}
		for _, c := range cs {
			if sha(c) == s {
				inGraph = true
				pg, _ := generation(children, sha(p))
				g = max(g, pg+1)
			}
		}
	}
	return g, inGraph
}
