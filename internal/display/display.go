// Package display is how oops shows releases, history events and target
// states: the cells, rows and notes of oops list, history and status, the
// same on a terminal and (tab-separated) in a pipe. Commands choose what to
// show; this package says how each value reads.
package display

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/oops-deploy/oops/internal/iostreams"
	"github.com/oops-deploy/oops/release"
	"github.com/oops-deploy/oops/workflow"
)

// StatusCell is oops list's STATUS column: "LIVE", "OFF (warm)", "BAD: <reason>".
//
// With require-approval ", AWAITING APPROVAL" or ", APPROVED by <who>"
// follows.
func StatusCell(s workflow.ReleaseState) string {
	c, a := statusCell(s), s.Approval
	switch {
	case a == nil:
		return c
	case a.Approved():
		return strings.TrimPrefix(c+", APPROVED by "+a.ApprovedBy, "-, ")
	}
	return strings.TrimPrefix(c+", AWAITING APPROVAL (deployed by "+a.RequestedBy+")", "-, ")
}

func statusCell(s workflow.ReleaseState) string {
	switch {
	case s.Status == workflow.StatusBad && s.Color != "":
		return fmt.Sprintf("BAD (on %s): %s", s.Color, s.BadReason)
	case s.Status == workflow.StatusBad:
		return "BAD: " + s.BadReason
	case s.Status == workflow.StatusOff && s.Installing:
		return "OFF (installing, unverified)"
	case s.Status == workflow.StatusLive && s.Installing:
		return "LIVE (unverified)"
	case s.Status == workflow.StatusOff:
		return "OFF (warm)"
	case s.Status == "":
		return "-"
	}
	return s.Status
}

// DeployedCell is the DEPLOYED column: when the release last went live
// and who did it.
func DeployedCell(s workflow.ReleaseState, now time.Time, tty bool) string {
	if s.LiveAt.IsZero() {
		return "-"
	}
	when := s.LiveAt.UTC().Format(time.RFC3339)
	if tty {
		when = iostreams.RelTime(now, s.LiveAt)
	}
	if s.LiveBy == "" {
		return when
	}
	return when + " by " + s.LiveBy
}

// FlagsCell is the FLAGS column: dirty (published with --allow-dirty),
// bare (no oops metadata, so not verified on deploy), or "-".
func FlagsCell(r release.Release) string {
	var flags []string
	if r.Dirty {
		flags = append(flags, "dirty")
	}
	if r.Bare {
		flags = append(flags, "bare")
	}
	if len(flags) == 0 {
		return "-"
	}
	return strings.Join(flags, ",")
}

// Cell keeps one value on one line and in one tab-separated field.
func Cell(s string) string {
	if s == "" {
		return "-"
	}
	if plainCell(s) {
		return s // most values: no copy (oops list calls this per field)
	}
	return strings.Join(strings.Fields(s), " ")
}

// plainCell reports whether s is ASCII with single spaces between words
// and none at either end: what Cell would return unchanged.
func plainCell(s string) bool {
	if s[0] == ' ' || s[len(s)-1] == ' ' {
		return false
	}
	for i := range len(s) {
		switch c := s[i]; {
		case c >= 0x80 || c < ' ' || c == 0x7f:
			return false // non-ASCII may hold Unicode spaces: the slow path decides
		case c == ' ' && s[i+1] == ' ':
			return false
		}
	}
	return true
}

// Abbreviate keeps the first line of s, at most n characters.
func Abbreviate(s string, n int) string {
	s, _, _ = strings.Cut(s, "\n")
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}

// Side formats one end of a change: "green abc1234".
func Side(s release.Side) string {
	switch {
	case s.Color == "" && s.Commit == "":
		return "-"
	case s.Commit == "":
		return string(s.Color)
	case s.Color == "":
		return release.Short(s.Commit)
	}
	return string(s.Color) + " " + release.Short(s.Commit)
}

// PipedListRows are the lines of a piped oops list: always the same eight
// columns in the same order (documented in the help and the README), so
// that cut -f and awk keep working whatever the target and the marks.
func PipedListRows(rels []release.Release, status map[string]workflow.ReleaseState) [][]string {
	rows := make([][]string, 0, len(rels))
	for _, r := range rels {
		rs := status[r.Commit] // zero when nothing is known: "-"
		rows = append(rows, []string{
			r.Short(), r.Published.UTC().Format(time.RFC3339), strconv.FormatInt(r.Size, 10),
			Cell(r.Author), Cell(r.Subject), StatusCell(rs), DeployedCell(rs, time.Time{}, false), FlagsCell(r),
		})
	}
	return rows
}

// Bake is a bake's verdict and its worst number, for the history table:
// "bake fail, 5xx 34.2% of 812"; "" when there was no bake.
func Bake(a *release.Analysis) string {
	switch {
	case a == nil || a.Bake == "":
		return ""
	case a.Verdict == "":
		return "bake interrupted"
	case a.Worst == "":
		return "bake " + a.Verdict
	}
	return "bake " + a.Verdict + ", " + a.Worst
}
