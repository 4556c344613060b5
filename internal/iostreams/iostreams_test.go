package iostreams

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/mattn/go-runewidth"
)

// TestPrintTable: piped, a table is tab-separated rows a script can cut
// (no header, no borders); on a terminal it has its header.
func TestPrintTable(t *testing.T) {
	t.Parallel()
	rows := [][]string{{"blue", "live"}, {"green", "off"}}
	for _, tty := range []bool{false, true} {
		var out bytes.Buffer
		s := &IOStreams{Out: &out, OutTTY: tty}
		if err := s.PrintTable([]string{"COLOR", "ROLE"}, rows); err != nil {
			t.Fatal(err)
		}
		got := out.String()
		if !tty && got != "blue\tlive\ngreen\toff\n" {
			t.Errorf("piped: %q", got)
		}
		if tty && (!strings.Contains(got, "COLOR") || !strings.Contains(got, "green") || strings.Contains(got, "\t")) {
			t.Errorf("terminal:\n%s", got)
		}
	}
}

func TestRelTime(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		ago  time.Duration
		want string
	}{
		{30 * time.Second, "just now"}, {5 * time.Minute, "5m ago"}, {47 * time.Hour, "47h ago"},
		{72 * time.Hour, "3d ago"}, {-time.Minute, "in the future"},
	} {
		if got := RelTime(now, now.Add(-tc.ago)); got != tc.want {
			t.Errorf("RelTime(%s ago) = %q, want %q", tc.ago, got, tc.want)
		}
	}
	if got := RelTime(now, time.Time{}); got != "-" {
		t.Errorf("zero time: %q", got)
	}
}

// TestTableFitsTheTerminal: on an 80-column terminal a table with a long
// subject fits: the widest column is cut with an ellipsis, the short ones
// are kept whole.
func TestTableFitsTheTerminal(t *testing.T) {
	t.Parallel()
	header := []string{"STATUS", "COMMIT", "AUTHOR", "SUBJECT"}
	rows := [][]string{
		{"LIVE", "4f2a1c9", "Ada Lovelace", strings.Repeat("fix the checkout totals when a coupon applies ", 10)},
		{"BAD: 500s on /checkout after the deploy of the new totals", "1111111", "Grace Hopper", "short"},
	}
	for _, width := range []int{80, 60, 120} {
		var out bytes.Buffer
		s := &IOStreams{Out: &out, OutTTY: true, Width: width}
		if err := s.PrintTable(header, rows); err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(strings.TrimRight(out.String(), "\n"), "\n") {
			if w := runewidth.StringWidth(line); w > width {
				t.Errorf("width %d: a line is %d wide:\n%s", width, w, out.String())
				break
			}
		}
		for _, whole := range []string{"4f2a1c9", "1111111", "COMMIT"} {
			if !strings.Contains(out.String(), whole) {
				t.Errorf("width %d: %q was cut:\n%s", width, whole, out.String())
			}
		}
		if !strings.Contains(out.String(), "…") {
			t.Errorf("width %d: nothing cut with an ellipsis:\n%s", width, out.String())
		}
	}
}

// Colors only on a terminal that takes them, and they do not count in
// the width.
func TestTableColors(t *testing.T) {
	t.Parallel()
	style := func(col, cell string) Color {
		if col == "STATUS" && cell == "LIVE" {
			return Green
		}
		return ""
	}
	for _, tc := range []struct {
		s         IOStreams
		wantColor bool
	}{
		{IOStreams{OutTTY: true, Color: true, Width: 40}, true},
		{IOStreams{OutTTY: true, Color: false}, false},
		{IOStreams{OutTTY: false, Color: true}, false},
	} {
		var out bytes.Buffer
		tc.s.Out = &out
		if err := tc.s.PrintStyledTable([]string{"STATUS", "COMMIT"}, [][]string{{"LIVE", "4f2a1c9"}, {"OFF", "1111111"}}, style); err != nil {
			t.Fatal(err)
		}
		if got := strings.Contains(out.String(), "\x1b[32mLIVE\x1b[0m"); got != tc.wantColor {
			t.Errorf("%+v: colored %v:\n%q", tc.s, got, out.String())
		}
	}
}

func TestWidthOf(t *testing.T) {
	t.Parallel()
	term := func(w int, err error) func() (int, error) { return func() (int, error) { return w, err } }
	for _, tc := range []struct {
		columns string
		size    func() (int, error)
		want    int
	}{
		{"100", term(80, nil), 100},
		{"", term(80, nil), 80},
		{"wide", term(132, nil), 132},
		{"", term(0, errors.New("not a terminal")), 0},
		{"-3", term(0, errors.New("not a terminal")), 0},
	} {
		if got := widthOf(tc.columns, tc.size); got != tc.want {
			t.Errorf("widthOf(%q) = %d, want %d", tc.columns, got, tc.want)
		}
	}
}

// oops list's widest table (status, flags, deployed) fits 80 columns with
// its short SHAs whole.
func TestListTableFits80(t *testing.T) {
	t.Parallel()
	header := []string{"STATUS", "COMMIT", "PUBLISHED", "SIZE", "AUTHOR", "SUBJECT", "DEPLOYED", "FLAGS"}
	rows := [][]string{
		{"BAD (on green): 500s on checkout", "4f2a1c9", "3h ago (2026-11-30 09:12)", "12.3 MiB", "Ada Lovelace", "fix the totals when a coupon applies twice", "2026-11-30T09:20:00Z by ada@build-host", "dirty,bare"},
		{"LIVE", "1111111", "2d ago (2026-11-28 10:00)", "12.1 MiB", "Grace Hopper", "first", "1d ago by grace@laptop", "-"},
	}
	var out bytes.Buffer
	s := &IOStreams{Out: &out, OutTTY: true, Width: 80}
	if err := s.PrintTable(header, rows); err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(strings.TrimRight(out.String(), "\n"), "\n") {
		if w := runewidth.StringWidth(line); w > 80 {
			t.Errorf("a line is %d wide:\n%s", w, out.String())
		}
	}
	for _, whole := range []string{"4f2a1c9", "1111111", "12.3 MiB", "LIVE"} {
		if !strings.Contains(out.String(), whole) {
			t.Errorf("%q was cut:\n%s", whole, out.String())
		}
	}
}
