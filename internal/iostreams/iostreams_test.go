package iostreams

import (
	"bytes"
	"strings"
	"testing"
	"time"
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
