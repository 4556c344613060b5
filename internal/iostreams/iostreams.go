// Package iostreams is where a command reads and writes, and how it
// prints: data on Out (tables on a terminal, tab-separated lines when
// piped, JSON), progress and diagnostics on ErrOut. It knows nothing of
// oops' workflows (after the GitHub CLI's pkg/iostreams).
package iostreams

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/olekukonko/tablewriter"
	"github.com/olekukonko/tablewriter/tw"
	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

// IOStreams are where a command reads and writes. Data goes to Out,
// progress and diagnostics to ErrOut.
type IOStreams struct {
	In     io.Reader
	Out    io.Writer
	ErrOut io.Writer
	// InTTY, OutTTY, ErrTTY tell whether each stream is a terminal.
	InTTY, OutTTY, ErrTTY bool
}

// System returns the process's standard streams.
func System() *IOStreams {
	isTTY := func(f *os.File) bool { return term.IsTerminal(int(f.Fd())) }
	return &IOStreams{
		In: os.Stdin, Out: os.Stdout, ErrOut: os.Stderr,
		InTTY: isTTY(os.Stdin), OutTTY: isTTY(os.Stdout), ErrTTY: isTTY(os.Stderr),
	}
}

// Progressf writes a progress line on ErrOut.
func (s *IOStreams) Progressf(format string, args ...any) {
	fmt.Fprintf(s.ErrOut, format+"\n", args...)
}

// Warnf writes a diagnostic on ErrOut: "oops: " and the message.
func (s *IOStreams) Warnf(format string, args ...any) {
	fmt.Fprintf(s.ErrOut, "oops: "+format+"\n", args...)
}

// WriteJSON writes v as indented JSON (--json).
func WriteJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// PrintTable renders a table on a terminal and tab-separated lines (no
// header, greppable) otherwise, as gh does.
func (s *IOStreams) PrintTable(header []string, rows [][]string) error {
	if !s.OutTTY {
		bw := bufio.NewWriter(s.Out)
		for _, r := range rows {
			bw.WriteString(strings.Join(r, "\t"))
			bw.WriteByte('\n')
		}
		return bw.Flush()
	}
	t := tablewriter.NewTable(s.Out,
		tablewriter.WithHeaderAutoFormat(tw.Off),
		tablewriter.WithRowAutoWrap(tw.WrapTruncate),
	)
	t.Header(toAny(header)...)
	for _, r := range rows {
		if err := t.Append(toAny(r)...); err != nil {
			return err
		}
	}
	return t.Render()
}

func toAny(s []string) []any {
	out := make([]any, len(s))
	for i, v := range s {
		out[i] = v
	}
	return out
}

// RelTime says how long ago t was, coarsely.
func RelTime(now, t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	d := now.Sub(t)
	switch {
	case d < 0:
		return "in the future"
	case d < time.Minute:
		return "just now"
	case d < time.Hour:
		return fmt.Sprintf("%dm ago", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh ago", int(d.Hours()))
	default:
		return fmt.Sprintf("%dd ago", int(d.Hours()/24))
	}
}

// ProgressBar returns what wraps a reader of size bytes in a byte progress
// bar drawn on ErrOut, described by what.
func (s *IOStreams) ProgressBar(size int64, what string) func(io.Reader) io.Reader {
	return func(r io.Reader) io.Reader {
		bar := progressbar.NewOptions64(size,
			progressbar.OptionSetWriter(s.ErrOut),
			progressbar.OptionSetDescription(what),
			progressbar.OptionShowBytes(true),
			progressbar.OptionSetWidth(30),
			progressbar.OptionThrottle(100*time.Millisecond),
			progressbar.OptionClearOnFinish(),
		)
		pr := progressbar.NewReader(r, bar)
		return &pr
	}
}
