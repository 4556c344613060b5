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
			return nil, &Error{Path: path, Msg: "config file does not exist", Hint: "create it (see .oopsrc.example) or run oops init"}
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
func Parse(path string, data []byte) (*Config, error) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, syntaxError(path, data, err)
	}
	if raw == nil {
		return nil, &Error{Path: path, Msg: "config must be a JSON object", Hint: "start from:\n" + Sample}
	}
	known := knownKeys()
	var problems []string
	for _, k := range sortedKeys(raw) {
		if _, ok := known[k]; !ok {
			msg := fmt.Sprintf("unknown key %q", k)
			if s := closest(k, known); s != "" {
				msg += fmt.Sprintf(" (did you mean %q?)", s)
			}
			problems = append(problems, msg)
		}
	}
	if len(problems) > 0 {
		return nil, &Error{Path: path, Msg: strings.Join(problems, "; "), Hint: "known keys are listed in .oopsrc.example and the README"}
	}
	c := &Config{Path: path, Dir: filepath.Dir(path)}
	v := reflect.ValueOf(c).Elem()
	for _, k := range sortedKeys(raw) {
		f := v.FieldByIndex(known[k])
		if err := json.Unmarshal(raw[k], f.Addr().Interface()); err != nil {
			problems = append(problems, fmt.Sprintf("%q must be %s (at %s)", k, typeName(f.Type()), position(data, keyOffset(data, k))))
		}
	}
	if strings.TrimSpace(c.ApplicationName) == "" {
		problems = append(problems, `missing required key "application-name"`)
	}
	if c.S3Bucket == "" && c.Store == "" {
		problems = append(problems, `missing required key "store" (or "s3-bucket")`)
	}
	if len(problems) > 0 {
		return nil, &Error{Path: path, Msg: strings.Join(problems, "; "), Hint: "example:\n" + Sample}
	}
	return c, nil
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
		return &Error{Path: path + ":" + position(data, se.Offset), Msg: "invalid JSON: " + se.Error()}
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

// keyOffset finds where "key" appears, for type error positions.
func keyOffset(data []byte, key string) int64 {
	i := bytes.Index(data, []byte(`"`+key+`"`))
	if i < 0 {
		return 0
	}
	return int64(i) + 1
}
