// Package config reads .oopsrc, found like git finds .git.
package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"

	"github.com/agnivade/levenshtein"
)

// FileName is the name of the config file.
const FileName = ".oopsrc"

// Config is the content of .oopsrc. Keys are kebab-case like the original
// four (elb-name, application-name, deployment-group, s3-bucket).
type Config struct {
	// The original tool's keys.
	ELBName         string `json:"elb-name,omitempty"`
	ApplicationName string `json:"application-name"`
	DeploymentGroup string `json:"deployment-group,omitempty"`
	S3Bucket        string `json:"s3-bucket,omitempty"`

	Region string `json:"region,omitempty"`
	// Store is s3://bucket[/prefix] or a directory (relative to the
	// .oopsrc folder). s3-bucket is shorthand for s3://<bucket>.
	Store string `json:"store,omitempty"`
	// Target is elb, alb or local; inferred from elb-name/alb-name when empty.
	Target string `json:"target,omitempty"`

	// Health gate: probed before a switch. {ip} and {port} are expanded.
	HealthCheckURL string `json:"health-check-url,omitempty"`
	// VerifyTimeout is how long to watch the new color after a switch (Go duration).
	VerifyTimeout string `json:"verify-timeout,omitempty"`
	// PreviewELBName is the ELB that `oops off` points at the off color.
	PreviewELBName string `json:"preview-elb-name,omitempty"`

	// ALB.
	ALBName          string `json:"alb-name,omitempty"`
	ListenerARN      string `json:"listener-arn,omitempty"`
	BlueTargetGroup  string `json:"blue-target-group,omitempty"`
	GreenTargetGroup string `json:"green-target-group,omitempty"`
	MinHealthy       *int   `json:"min-healthy,omitempty"`

	// Lock.
	LockTTL string `json:"lock-ttl,omitempty"`

	// Local target (built-in proxy).
	Listen        string   `json:"listen,omitempty"`
	PreviewListen string   `json:"preview-listen,omitempty"`
	BluePort      int      `json:"blue-port,omitempty"`
	GreenPort     int      `json:"green-port,omitempty"`
	Command       []string `json:"command,omitempty"`
	HealthPath    string   `json:"health-path,omitempty"`
	DrainTimeout  string   `json:"drain-timeout,omitempty"`
	StateDir      string   `json:"state-dir,omitempty"`

	// Path is the file this was read from; Dir its folder.
	Path string `json:"-"`
	Dir  string `json:"-"`
}

// Sample is printed when no .oopsrc is found, as the original tool did.
const Sample = `{
  "elb-name": "triggers-octoblu-com",
  "application-name": "triggers-service",
  "deployment-group": "master",
  "s3-bucket": "octoblu-deploy"
}`

// Error is a problem with the config file. All of them exit with code 2.
type Error struct {
	Path string
	Msg  string
	Hint string
}

func (e *Error) Error() string {
	if e.Path == "" {
		return e.Msg
	}
	return e.Path + ": " + e.Msg
}

// NotFoundError: no .oopsrc in the folder or any parent.
type NotFoundError struct {
	Searched []string
}

func (e *NotFoundError) Error() string {
	return fmt.Sprintf("no %s found in %s or any parent folder", FileName, e.Searched[0])
}

// Find looks for .oopsrc in dir and its parents.
func Find(dir string) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	var searched []string
	for d := abs; ; d = filepath.Dir(d) {
		searched = append(searched, d)
		p := filepath.Join(d, FileName)
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
		if filepath.Dir(d) == d {
			return "", &NotFoundError{Searched: searched}
		}
	}
}

// Load reads and validates a config file.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, &Error{Path: path, Msg: "config file does not exist", Hint: "create it with `oops init`, or write one like:\n" + Sample}
		}
		return nil, &Error{Path: path, Msg: err.Error()}
	}
	c, err := Parse(path, data)
	if err != nil {
		return nil, err
	}
	return c, nil
}

// Parse decodes and validates config text; path is used in messages.
// Every problem is reported at once: unknown keys (with the closest known
// key), wrongly typed keys and missing required keys, each with its
// line:column.
func Parse(path string, data []byte) (*Config, error) {
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf")) // editors on Windows add a BOM
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, &Error{Path: path, Msg: "config file is empty", Hint: "start from:\n" + Sample}
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, syntaxError(path, data, err)
	}
	if raw == nil {
		return nil, &Error{Path: path, Msg: "config must be a JSON object", Hint: "start from:\n" + Sample}
	}
	pos := keyPositions(data)
	// A problem has a line:col where a key is to blame.
	type problem struct{ at, msg string }
	var problems []problem
	add := func(k, format string, args ...any) {
		p := problem{msg: fmt.Sprintf(format, args...)}
		if off, ok := pos[k]; ok {
			p.at = ":" + position(data, off)
		}
		problems = append(problems, p)
	}
	known := knownKeys()
	c := &Config{Path: path, Dir: filepath.Dir(path)}
	v := reflect.ValueOf(c).Elem()
	unknown, badType := false, map[string]bool{}
	for _, k := range sortedKeys(raw) {
		if strings.HasPrefix(k, "//") {
			continue // a comment, as in .oopsrc.example (JSON has no comments)
		}
		idx, ok := known[k]
		if !ok {
			unknown = true
			if s := closest(k, known); s != "" {
				add(k, "unknown key %q (did you mean %q?)", k, s)
			} else {
				add(k, "unknown key %q", k)
			}
			continue
		}
		f := v.FieldByIndex(idx)
		if err := json.Unmarshal(raw[k], f.Addr().Interface()); err != nil {
			badType[k] = true
			add(k, "%q must be %s, not %s", k, typeName(f.Type()), jsonKind(raw[k]))
		}
	}
	_, hasApp := raw["application-name"]
	switch app := c.ApplicationName; {
	case !hasApp:
		add("", `missing required key "application-name"`)
	case badType["application-name"]:
	case strings.TrimSpace(app) == "":
		add("application-name", `"application-name" is empty`)
	case strings.ContainsAny(app, "/\\") || strings.HasPrefix(app, "."):
		// It is a folder of the store: <app>/<app>-<sha>.zip.
		add("application-name", `"application-name" %q cannot contain / or \ or start with a dot`, app)
	}
	_, hasStore := raw["store"]
	_, hasBucket := raw["s3-bucket"]
	switch {
	case !hasStore && !hasBucket:
		add("", `missing required key "store" (a directory or s3://bucket[/prefix]), or "s3-bucket"`)
	case hasStore && !badType["store"]:
		if c.Store == "" {
			add("store", `"store" is empty`)
		} else if msg := checkStore(c.Store); msg != "" {
			add("store", "%s", msg)
		}
	case hasBucket && !badType["s3-bucket"]:
		if c.S3Bucket == "" {
			add("s3-bucket", `"s3-bucket" is empty`)
		} else if strings.ContainsAny(c.S3Bucket, "/:") {
			add("s3-bucket", `"s3-bucket" takes a bucket name, not %q; for a key prefix use "store": "s3://bucket/prefix"`, c.S3Bucket)
		}
	}
	if len(problems) == 0 {
		return c, nil
	}
	hint := "example:\n" + Sample
	if unknown {
		hint = "known keys are listed in .oopsrc.example and the README; " + hint
	}
	if len(problems) == 1 {
		// "file:line:col: message", as compilers print it.
		return nil, &Error{Path: path + problems[0].at, Msg: problems[0].msg, Hint: hint}
	}
	lines := make([]string, len(problems))
	for i, p := range problems {
		lines[i] = path + p.at + ": " + p.msg
	}
	return nil, &Error{Path: path, Msg: fmt.Sprintf("%d problems:\n  %s", len(problems), strings.Join(lines, "\n  ")), Hint: hint}
}

// checkStore validates the "store" value; "" when fine.
func checkStore(s string) string {
	if rest, ok := strings.CutPrefix(s, "s3://"); ok {
		if b, _, _ := strings.Cut(rest, "/"); b == "" {
			return fmt.Sprintf(`"store" %q names no bucket: use s3://bucket[/prefix]`, s)
		}
		return ""
	}
	if i := strings.Index(s, "://"); i > 0 {
		return fmt.Sprintf(`"store" %q: only s3:// URLs and directory paths are supported`, s)
	}
	return ""
}

func jsonKind(raw json.RawMessage) string {
	t := bytes.TrimSpace(raw)
	if len(t) == 0 {
		return "nothing"
	}
	switch t[0] {
	case '"':
		return "a string"
	case '{':
		return "an object"
	case '[':
		return "an array"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	}
	return "a number"
}

// keyPositions finds where each top-level key starts (byte offset of its
// opening quote), for messages.
func keyPositions(data []byte) map[string]int64 {
	pos := map[string]int64{}
	dec := json.NewDecoder(bytes.NewReader(data))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return pos
	}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return pos
		}
		k, _ := t.(string)
		end := dec.InputOffset()
		start := int64(bytes.LastIndexByte(data[:end-1], '"'))
		for start > 0 && data[start-1] == '\\' { // an escaped quote inside the key
			start = int64(bytes.LastIndexByte(data[:start-1], '"'))
		}
		if _, dup := pos[k]; !dup && start >= 0 {
			pos[k] = start
		}
		var skip json.RawMessage
		if dec.Decode(&skip) != nil {
			return pos
		}
	}
	return pos
}

// StoreURL is the store location: "s3://bucket[/prefix]" or an absolute
// directory.
func (c *Config) StoreURL() string {
	s := c.Store
	if s == "" && c.S3Bucket != "" {
		return "s3://" + c.S3Bucket
	}
	if strings.HasPrefix(s, "s3://") {
		return s
	}
	if !filepath.IsAbs(s) {
		s = filepath.Join(c.Dir, s)
	}
	return s
}

// TargetKind is the configured or inferred target: elb, alb, local or "".
func (c *Config) TargetKind() string {
	switch {
	case c.Target != "":
		return c.Target
	case c.ALBName != "" || c.ListenerARN != "":
		return "alb"
	case c.ELBName != "":
		return "elb"
	}
	return ""
}

func knownKeys() map[string][]int {
	m := map[string][]int{}
	t := reflect.TypeOf(Config{})
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		if name != "" && name != "-" {
			m[name] = t.Field(i).Index
		}
	}
	return m
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

func closest(k string, known map[string][]int) string {
	best, bestD := "", 1<<30
	norm := strings.ReplaceAll(strings.ToLower(k), "_", "-")
	for cand := range known {
		d := levenshtein.ComputeDistance(norm, cand)
		if d < bestD || (d == bestD && cand < best) {
			best, bestD = cand, d
		}
	}
	if bestD <= max(3, len(k)/3) {
		return best
	}
	return ""
}

func typeName(t reflect.Type) string {
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Int:
		return "a number"
	case reflect.Slice:
		return "an array of strings"
	}
	return t.String()
}

func syntaxError(path string, data []byte, err error) error {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		off := se.Offset - 1 // Offset counts the offending byte
		if strings.Contains(se.Error(), "unexpected end") {
			off = int64(len(data)) // ended early: point past the end
		}
		return &Error{Path: path + ":" + position(data, off), Msg: "invalid JSON: " + se.Error(), Hint: "JSON needs double quotes, commas between entries and none after the last"}
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return &Error{Path: path, Msg: "config must be a JSON object, not " + te.Value, Hint: "start from:\n" + Sample}
	}
	return &Error{Path: path, Msg: "invalid JSON: " + err.Error()}
}

// position turns a byte offset into "line:column" (1-based).
func position(data []byte, off int64) string {
	if off > int64(len(data)) {
		off = int64(len(data))
	}
	if off < 0 {
		off = 0
	}
	before := data[:off]
	line := bytes.Count(before, []byte("\n")) + 1
	col := int(off) - bytes.LastIndexByte(before, '\n')
	return fmt.Sprintf("%d:%d", line, col)
}
