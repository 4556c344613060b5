package display

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/oops-deploy/oops/internal/iostreams"
	"github.com/oops-deploy/oops/release"
	"github.com/oops-deploy/oops/store"
	"github.com/oops-deploy/oops/workflow"
)

func TestStatusCell(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		s    workflow.ReleaseState
		want string
	}{
		{workflow.ReleaseState{}, "-"},
		{workflow.ReleaseState{Status: workflow.StatusLive}, "LIVE"},
		{workflow.ReleaseState{Status: workflow.StatusLive, Installing: true}, "LIVE (unverified)"},
		{workflow.ReleaseState{Status: workflow.StatusOff}, "OFF (warm)"},
		{workflow.ReleaseState{Status: workflow.StatusOff, Installing: true}, "OFF (installing, unverified)"},
		{workflow.ReleaseState{Status: workflow.StatusBad, Mark: store.Mark{BadReason: "500s"}}, "BAD: 500s"},
		{workflow.ReleaseState{Status: workflow.StatusBad, Color: release.Green, Mark: store.Mark{BadReason: "500s"}}, "BAD (on green): 500s"},
	} {
		if got := StatusCell(tc.s); got != tc.want {
			t.Errorf("StatusCell(%+v) = %q, want %q", tc.s, got, tc.want)
		}
	}
}

// TestPipedListRows: piped, every release is the same eight columns, so
// cut -f and awk keep working; a value never breaks a line or a field.
func TestPipedListRows(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)
	rels := []release.Release{
		{Commit: "aaaaaaa1111111111111111111111111111111aa", Published: at, Size: 2048, Author: "Ada", Subject: "fix\tcheckout\ntotals", Dirty: true},
		{Commit: "bbbbbbb2222222222222222222222222222222bb", Published: at, Bare: true},
	}
	status := map[string]workflow.ReleaseState{rels[0].Commit: {Status: workflow.StatusLive, Mark: store.Mark{LiveAt: at, LiveBy: "ada@host"}}}
	want := [][]string{
		{"aaaaaaa", "2026-11-30T10:00:00Z", "2048", "Ada", "fix checkout totals", "LIVE", "2026-11-30T10:00:00Z by ada@host", "dirty"},
		{"bbbbbbb", "2026-11-30T10:00:00Z", "0", "-", "-", "-", "-", "bare"},
	}
	if got := PipedListRows(rels, status); !reflect.DeepEqual(got, want) {
		t.Errorf("rows\n%q\nwant\n%q", got, want)
	}
}

func TestSideAndAbbreviate(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		s    release.Side
		want string
	}{
		{release.Side{}, "-"},
		{release.Side{Color: release.Blue}, "blue"},
		{release.Side{Commit: "abcdef0123"}, "abcdef0"},
		{release.Side{Color: release.Green, Commit: "abcdef0123"}, "green abcdef0"},
	} {
		if got := Side(tc.s); got != tc.want {
			t.Errorf("Side(%+v) = %q, want %q", tc.s, got, tc.want)
		}
	}
	if got := Abbreviate("first line is long\nsecond", 10); got != "first lin…" {
		t.Errorf("Abbreviate = %q", got)
	}
}

func TestStyle(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		column, cell string
		want         iostreams.Color
	}{
		{"STATUS", "LIVE", iostreams.Green},
		{"STATUS", "LIVE (unverified)", iostreams.Yellow},
		{"STATUS", "BAD (on green): 500s", iostreams.Red},
		{"STATUS", "OFF (warm)", ""},
		{"STATUS", "fail", iostreams.Red},
		{"RESULT", "failed: lost the lock", iostreams.Red},
		{"RESULT", "refused", iostreams.Yellow},
		{"RESULT", "ok", ""},
		{"HEALTH", "2/2 InService", iostreams.Green},
		{"HEALTH", "1/2 InService (i-1 OutOfService)", iostreams.Red},
		{"SUBJECT", "BAD idea", ""},
	} {
		if got := Style(tc.column, tc.cell); got != tc.want {
			t.Errorf("Style(%q, %q) = %q, want %q", tc.column, tc.cell, got, tc.want)
		}
	}
}

func TestBake(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		a    *release.Analysis
		want string
	}{
		{nil, ""},
		{&release.Analysis{WarmUp: &release.WarmUp{Requests: 3}}, ""},
		{&release.Analysis{Bake: "1m", Verdict: "fail", Worst: "5xx 34.2% of 812"}, "bake fail, 5xx 34.2% of 812"},
		{&release.Analysis{Bake: "1m", Verdict: "inconclusive"}, "bake inconclusive"},
		{&release.Analysis{Bake: "1m"}, "bake interrupted"},
	} {
		if got := Bake(tc.a); got != tc.want {
			t.Errorf("Bake(%+v) = %q, want %q", tc.a, got, tc.want)
		}
	}
}

// TestCell: one line, one field, whatever the value holds.
func TestCell(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", "-"},
		{"fix the login", "fix the login"},
		{"  fix  the\tlogin\n", "fix the login"},
		{"a\nb", "a b"},
		{"café au lait", "café au lait"},
		{"no\u00a0break\u2003em", "no break em"},
		{"x", "x"},
		{" ", ""},
	} {
		if got := Cell(tc.in); got != tc.want {
			t.Errorf("Cell(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// FuzzCell: the fast path for plain values gives what the general one does.
func FuzzCell(f *testing.F) {
	for _, s := range []string{"a b", " a", "a  b", "a\tb", "é\u2003x", "\x7f"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want := "-"
		if s != "" {
			want = strings.Join(strings.Fields(s), " ")
		}
		if got := Cell(s); got != want {
			t.Fatalf("Cell(%q) = %q, want %q", s, got, want)
		}
	})
}
