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
	"strconv"
	"strings"
	"time"

	"github.com/mattn/go-runewidth"
	"github.com/olekukonko/tablewriter"
	"github.com/olekukonko/tablewriter/renderer"
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
	// Width is the terminal's width in columns that tables fit in (0: no
	// limit); Color whether Out takes ANSI colors.
	Width int
	Color bool
}

// System returns the process's standard streams. Tables fit COLUMNS when
// it is set, else the terminal's width; colors are on for a terminal
// unless NO_COLOR is set (https://no-color.org) or TERM is dumb.
func System() *IOStreams {
	isTTY := func(f *os.File) bool { return term.IsTerminal(int(f.Fd())) }
	s := &IOStreams{
		In: os.Stdin, Out: os.Stdout, ErrOut: os.Stderr,
		InTTY: isTTY(os.Stdin), OutTTY: isTTY(os.Stdout), ErrTTY: isTTY(os.Stderr),
	}
	s.Width = widthOf(os.Getenv("COLUMNS"), func() (int, error) {
		w, _, err := term.GetSize(int(os.Stdout.Fd()))
		return w, err
	})
	_, noColor := os.LookupEnv("NO_COLOR")
	s.Color = s.OutTTY && !noColor && os.Getenv("TERM") != "dumb"
	return s
}

// widthOf is COLUMNS when it is a number, else what the terminal says (0
// when it cannot tell).
func widthOf(columns string, size func() (int, error)) int {
	if n, err := strconv.Atoi(strings.TrimSpace(columns)); err == nil && n > 0 {
		return n
	}
	if w, err := size(); err == nil && w > 0 {
		return w
	}
	return 0
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
	return s.PrintStyledTable(header, rows, nil)
}

// Style picks the color of a cell from its column's header and its text
// ("" for none).
type Style func(column, cell string) Color

// Color is an ANSI color of a table cell.
type Color string

// The colors tables use: green for what is well, red for what failed or
// is BAD, yellow for what is in between.
const (
	Green  Color = "32"
	Red    Color = "31"
	Yellow Color = "33"
)

// PrintStyledTable is PrintTable whose cells on a terminal fit its width
// (the widest column shrinks first, cut with an ellipsis) and are colored
// by style when colors are on.
func (s *IOStreams) PrintStyledTable(header []string, rows [][]string, style Style) error {
	if !s.OutTTY {
		bw := bufio.NewWriter(s.Out)
		for _, r := range rows {
			bw.WriteString(strings.Join(r, "\t"))
			bw.WriteByte('\n')
		}
		return bw.Flush()
	}
	rows = fit(header, rows, s.Width)
	// No borders, as gh: they cost three columns per column of an 80-column
	// terminal.
	t := tablewriter.NewTable(s.Out,
		tablewriter.WithHeaderAutoFormat(tw.Off),
		tablewriter.WithHeaderAlignment(tw.AlignLeft),
		tablewriter.WithRowAutoWrap(tw.WrapNone),
		tablewriter.WithRenderer(renderer.NewBlueprint(tw.Rendition{
			Borders: tw.BorderNone, Symbols: tw.NewSymbols(tw.StyleNone),
			Settings: tw.Settings{Separators: tw.Separators{BetweenColumns: tw.Off, BetweenRows: tw.Off}, Lines: tw.Lines{ShowHeaderLine: tw.Off}},
		})),
	)
	t.Header(toAny(header)...)
	for _, r := range rows {
		cells := toAny(r)
		if s.Color && style != nil {
			for i, c := range r {
				if i < len(header) {
					if col := style(header[i], c); col != "" {
						cells[i] = "\x1b[" + string(col) + "m" + c + "\x1b[0m"
					}
				}
			}
		}
		if err := t.Append(cells...); err != nil {
			return err
		}
	}
	return t.Render()
}

// minColumn is the narrowest a column shrinks to (an ellipsis and a few
// characters, or its header); shortColumn is the width up to which a
// column (a short SHA, a size, a color) is never cut.
const (
	minColumn   = 6
	shortColumn = 8
)

// fit cuts the cells of rows so that the table, padding included (a space
// each side of a cell), is at most width wide: the widest column gives up
// a character at a time. width 0: no limit.
func fit(header []string, rows [][]string, width int) [][]string {
	if width <= 0 || len(header) == 0 {
		return rows
	}
	w := make([]int, len(header))
	floor := make([]int, len(header))
	for i, h := range header {
		w[i] = runewidth.StringWidth(h)
	}
	for _, r := range rows {
		for i, c := range r {
			if i < len(w) {
				w[i] = max(w[i], runewidth.StringWidth(c))
			}
		}
	}
	for i, h := range header {
		floor[i] = max(minColumn, runewidth.StringWidth(h))
		if w[i] <= shortColumn {
			floor[i] = w[i]
		}
	}
	total := 2 * len(w)
	for _, x := range w {
		total += x
	}
	for total > width {
		widest := -1
		for i := range w {
			if w[i] > floor[i] && (widest < 0 || w[i] > w[widest]) {
				widest = i
			}
		}
		if widest < 0 {
			break // every column at its floor: as narrow as it gets
		}
		w[widest]--
		total--
	}
	out := make([][]string, len(rows))
	for j, r := range rows {
		out[j] = make([]string, len(r))
		for i, c := range r {
			if i < len(w) {
				c = Truncate(c, w[i])
			}
			out[j][i] = c
		}
	}
	return out
}

// Truncate cuts s to at most n display columns, ending with "…" when it
// cuts.
func Truncate(s string, n int) string {
	if runewidth.StringWidth(s) <= n {
		return s
	}
	if n <= 1 {
		return runewidth.Truncate(s, n, "")
	}
	return runewidth.Truncate(s, n, "…")
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
