package display

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/oops-deploy/oops/release"
	"github.com/oops-deploy/oops/target"
	"github.com/oops-deploy/oops/workflow"
)

// StatusTable is oops status' table: one row per color, live first.
func StatusTable(st *target.State) (header []string, rows [][]string) {
	rows = [][]string{colorRow(st, st.Live), colorRow(st, st.Off)}
	header = []string{"COLOR", "ROLE", "PORT", "COMMIT", "HEALTH"}
	if st.Live.PID > 0 || st.Off.PID > 0 {
		// Local target: the app process behind each color, last so that
		// scripts reading the first five columns keep working.
		header = append(header, "PID")
		for i, c := range []target.ColorState{st.Live, st.Off} {
			pid := "-"
			if c.PID > 0 {
				pid = strconv.Itoa(c.PID)
			}
			rows[i] = append(rows[i], pid)
		}
	}
	return header, rows
}

// StatusNotes are the lines under the table, name and value: health
// check, listeners, the target's notes (a Route 53 target's records and
// TTL), traffic, installs that did not pass, a pending switch.
func StatusNotes(st *target.State) [][2]string {
	var extra [][2]string
	if st.HealthCheck != "" {
		extra = append(extra, [2]string{"health check", st.HealthCheck})
	}
	for _, l := range st.Listeners {
		extra = append(extra, [2]string{"listener", l})
	}
	for _, n := range st.Notes {
		extra = append(extra, [2]string{n.Name, n.Text})
	}
	for _, c := range []target.ColorState{st.Live, st.Off} {
		if c.Traffic != nil {
			extra = append(extra, [2]string{"traffic", TrafficNote(c.Color, c.Traffic)})
		}
	}
	for _, c := range []target.ColorState{st.Live, st.Off} {
		if c.Installing {
			extra = append(extra, [2]string{"installing", installingNote(c)})
		}
	}
	if p := st.Pending; p != nil {
		extra = append(extra, [2]string{"pending", fmt.Sprintf("switch %s -> %s interrupted", p.From, p.To)})
	}
	return extra
}

func colorRow(st *target.State, c target.ColorState) []string {
	role := "off"
	switch {
	case c.Weight == 100:
		role = "live"
	case c.Weight > 0:
		role = fmt.Sprintf("live %d%%", c.Weight)
	case st.Live.Weight == 0 && st.Off.Weight == 0:
		role = "none"
	}
	port := "-"
	if c.Port > 0 {
		port = strconv.Itoa(c.Port)
	}
	commit := target.UnknownCommit
	if c.CommitKnown() {
		commit = release.Short(c.Commit)
	}
	return []string{string(c.Color), role, port, commit, healthCell(c)}
}

// healthCell summarises instance health: "2/2 InService", or the ones
// that are not, "-" when the target did not check this color.
func healthCell(c target.ColorState) string {
	if g := c.Group; g != nil && g.Desired == 0 && len(c.Instances) == 0 {
		// Scaled in on purpose (oops downscale): not a failure.
		return "cold (0 instances)"
	}
	if len(c.Instances) == 0 {
		switch {
		case c.Healthy == nil:
			return "-"
		case *c.Healthy:
			return "healthy"
		default:
			return "unhealthy"
		}
	}
	ok := 0
	var bad []string
	for _, in := range c.Instances {
		if in.Healthy {
			ok++
		} else {
			bad = append(bad, in.ID+" "+in.State)
		}
	}
	s := fmt.Sprintf("%d/%d InService", ok, len(c.Instances))
	if len(bad) > 0 {
		s += " (" + strings.Join(bad, ", ") + ")"
	}
	return s
}

// TrafficNote sums up what color c served lately: "green: 12.5 req/s,
// 5xx 0.4%, p99 3.2 ms (740 requests in the last 59.2s)".
func TrafficNote(c release.Color, tr *target.Traffic) string {
	window := strconv.FormatFloat(tr.Seconds, 'f', -1, 64) + "s"
	if tr.Requests == 0 {
		return fmt.Sprintf("%s: no requests in the last %s", c, window)
	}
	prec := 0
	if tr.Rate < 10 {
		prec = 2
	} else if tr.Rate < 100 {
		prec = 1
	}
	s := fmt.Sprintf("%s: %.*f req/s, 5xx %.1f%%", c, prec, tr.Rate, 100*tr.ServerErrorShare)
	if p := tr.P99Seconds; p != nil {
		switch {
		case tr.P99Over:
			s += fmt.Sprintf(", p99 over %g s", *p)
		case *p < 0.001:
			s += fmt.Sprintf(", p99 %.2f ms", *p*1000)
		case *p < 1:
			s += fmt.Sprintf(", p99 %.1f ms", *p*1000)
		default:
			s += fmt.Sprintf(", p99 %.2f s", *p)
		}
	}
	s += fmt.Sprintf(" (%d requests", tr.Requests)
	if tr.Cut > 0 {
		s += fmt.Sprintf(", %d cut", tr.Cut)
	}
	return s + " in the last " + window + ")"
}

// installingNote says that c runs a release that never passed its health
// check, and what to do about it.
func installingNote(c target.ColorState) string {
	short := release.Short(c.Commit)
	return fmt.Sprintf("%s runs %s, which has not passed its health check (its deploy failed or did not finish): "+
		"it is no known-good rollback target; oops deploy %s installs it again and waits for it", c.Color, short, short)
}

// ApprovalNotes say what awaits approval, and what was approved and is
// still to switch (oops status).
func ApprovalNotes(approvals []workflow.Approval) [][2]string {
	var notes [][2]string
	for _, a := range approvals {
		short := release.Short(a.Commit)
		note := fmt.Sprintf("%s on %s awaits approval: deployed by %s at %s%s; approve with: oops approve %s",
			short, a.Color, a.RequestedBy, a.RequestedAt.Local().Format("2006-01-02 15:04"), quotedReason(a.Reason), short)
		if a.Approved() {
			note = fmt.Sprintf("%s on %s is approved by %s (deployed by %s); switch with: oops deploy %s", short, a.Color, a.ApprovedBy, a.RequestedBy, short)
		}
		notes = append(notes, [2]string{"approval", note})
	}
	return notes
}

func quotedReason(reason string) string {
	if reason == "" {
		return ""
	}
	return fmt.Sprintf(" (%q)", reason)
}
