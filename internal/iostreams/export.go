package iostreams

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/template"
	"time"

	"github.com/itchyny/gojq"
)

// Exporter filters a command's JSON output, as the GitHub CLI does: --jq
// EXPR (a jq program, run in-process by gojq: no jq to install) or
// --template TPL (a Go template). Either implies --json.
type Exporter struct {
	JQ       string
	Template string
}

// ErrExport is wrapped by an --jq or --template that cannot be parsed.
var ErrExport = errors.New("invalid output filter")

// Set tells whether a filter was asked for.
func (e Exporter) Set() bool { return e.JQ != "" || e.Template != "" }

// Check parses the filter, so that a bad one is said before the command
// runs (and changes anything).
func (e Exporter) Check() error {
	if e.JQ != "" && e.Template != "" {
		return fmt.Errorf("%w: --jq and --template cannot be combined", ErrExport)
	}
	if e.JQ != "" {
		if _, err := compileJQ(e.JQ); err != nil {
			return err
		}
	}
	if e.Template != "" {
		if _, err := parseTemplate(e.Template, time.Now); err != nil {
			return err
		}
	}
	return nil
}

// Write prints v as JSON, or through the filter when one is set. now is
// the clock of the template's timeago.
func (e Exporter) Write(w io.Writer, v any, now func() time.Time) error {
	if !e.Set() {
		return WriteJSON(w, v)
	}
	// The filters see the JSON, not the Go values: field names and
	// formats are the --json ones.
	raw, err := json.Marshal(v)
	if err != nil {
		return err
	}
	var data any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&data); err != nil {
		return err
	}
	if e.JQ != "" {
		return runJQ(w, e.JQ, normalize(data))
	}
	t, err := parseTemplate(e.Template, now)
	if err != nil {
		return err
	}
	return t.Execute(w, data)
}

func compileJQ(expr string) (*gojq.Code, error) {
	q, err := gojq.Parse(expr)
	if err != nil {
		return nil, fmt.Errorf("%w: --jq %q: %v", ErrExport, expr, err)
	}
	code, err := gojq.Compile(q)
	if err != nil {
		return nil, fmt.Errorf("%w: --jq %q: %v", ErrExport, expr, err)
	}
	return code, nil
}

// runJQ prints each result of expr on data on its own line: strings raw
// (as jq -r), anything else as compact JSON.
func runJQ(w io.Writer, expr string, data any) error {
	code, err := compileJQ(expr)
	if err != nil {
		return err
	}
	iter := code.Run(data)
	for {
		v, ok := iter.Next()
		if !ok {
			return nil
		}
		if err, ok := v.(error); ok {
			var halt *gojq.HaltError
			if errors.As(err, &halt) && halt.Value() == nil {
				return nil
			}
			return fmt.Errorf("--jq %q: %w", expr, err)
		}
		if s, ok := v.(string); ok {
			if _, err := fmt.Fprintln(w, s); err != nil {
				return err
			}
			continue
		}
		b, err := gojq.Marshal(v)
		if err != nil {
			return err
		}
		if _, err := fmt.Fprintln(w, string(b)); err != nil {
			return err
		}
	}
}

// normalize turns json.Number into the int or float64 gojq works with.
func normalize(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			x[k] = normalize(e)
		}
		return x
	case []any:
		for i, e := range x {
			x[i] = normalize(e)
		}
		return x
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return int(i)
		}
		f, _ := x.Float64()
		return f
	}
	return v
}

// parseTemplate parses tpl with the helpers of gh's --template: timeago,
// truncate, json, join, upper, lower.
func parseTemplate(tpl string, now func() time.Time) (*template.Template, error) {
	funcs := template.FuncMap{
		"timeago": func(v any) (string, error) {
			t, err := time.Parse(time.RFC3339Nano, fmt.Sprint(v))
			if err != nil {
				return "", fmt.Errorf("timeago: %q is not an RFC 3339 time", v)
			}
			return RelTime(now(), t), nil
		},
		"truncate": func(n int, v any) string { return Truncate(fmt.Sprint(v), n) },
		"json": func(v any) (string, error) {
			b, err := json.Marshal(v)
			return string(b), err
		},
		"join":  joinAny,
		"upper": strings.ToUpper,
		"lower": strings.ToLower,
	}
	t, err := template.New("--template").Option("missingkey=zero").Funcs(funcs).Parse(tpl)
	if err != nil {
		return nil, fmt.Errorf("%w: --template: %v", ErrExport, err)
	}
	return t, nil
}

// joinAny joins a JSON array's items with sep ("" for a missing field).
func joinAny(sep string, v any) string {
	items, _ := v.([]any)
	s := make([]string, len(items))
	for i, e := range items {
		s[i] = fmt.Sprint(e)
	}
	return strings.Join(s, sep)
}
