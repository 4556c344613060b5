package iostreams

import (
	"bytes"
	"errors"
	"testing"
	"time"
)

type rel struct {
	Commit    string    `json:"commit"`
	Subject   string    `json:"subject"`
	Size      int64     `json:"size"`
	Published time.Time `json:"published"`
	Tags      []string  `json:"tags,omitempty"`
}

func TestExporter(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	rels := []rel{
		{Commit: "4f2a1c9aaaa", Subject: "fix checkout totals", Size: 2048, Published: now.Add(-3 * time.Hour), Tags: []string{"v1.4.2", "stable"}},
		{Commit: "1111111bbbb", Subject: "first", Size: 10, Published: now.Add(-72 * time.Hour)},
	}
	tests := []struct {
		e    Exporter
		want string
	}{
		{Exporter{JQ: ".[0].commit"}, "4f2a1c9aaaa\n"},
		{Exporter{JQ: ".[] | select(.size > 100) | {commit, size}"}, `{"commit":"4f2a1c9aaaa","size":2048}` + "\n"},
		{Exporter{JQ: "map(.size) | add"}, "2058\n"},
		{Exporter{JQ: "length"}, "2\n"},
		{Exporter{Template: `{{range .}}{{.commit | printf "%.7s"}} {{truncate 8 .subject}} {{timeago .published}}{{"\n"}}{{end}}`},
			"4f2a1c9 fix che… 3h ago\n1111111 first 3d ago\n"},
		{Exporter{Template: `{{range .}}{{join "," .tags}};{{end}}`}, "v1.4.2,stable;;"},
		{Exporter{Template: `{{(index . 0).size}}`}, "2048"},
	}
	for _, tt := range tests {
		var out bytes.Buffer
		if err := tt.e.Check(); err != nil {
			t.Fatalf("%+v: Check: %v", tt.e, err)
		}
		if err := tt.e.Write(&out, rels, func() time.Time { return now }); err != nil {
			t.Fatalf("%+v: %v", tt.e, err)
		}
		if out.String() != tt.want {
			t.Errorf("%+v:\n%q\nwant\n%q", tt.e, out.String(), tt.want)
		}
	}
}

// A filter that does not parse is refused before the command runs.
func TestExporterCheck(t *testing.T) {
	t.Parallel()
	for _, e := range []Exporter{
		{JQ: ".[] | select("},
		{Template: "{{range .}}"},
		{Template: "{{nosuchfunc .}}"},
		{JQ: ".", Template: "{{.}}"},
	} {
		if err := e.Check(); !errors.Is(err, ErrExport) {
			t.Errorf("%+v: %v, want ErrExport", e, err)
		}
	}
	if err := (Exporter{}).Check(); err != nil {
		t.Errorf("no filter: %v", err)
	}
}
