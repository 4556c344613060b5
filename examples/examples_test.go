// Package examples holds the CI examples; its test keeps their oops
// command lines valid for the CLI they ship with.
package examples

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/oops-deploy/oops/cmd"
)

type workflow struct {
	Jobs map[string]struct {
		Steps []struct {
			Run string `yaml:"run"`
		} `yaml:"steps"`
	} `yaml:"jobs"`
}

// TestWorkflowsUseRealCommands parses every GitHub Actions example and runs
// each oops command line in them through oops' own command and flag
// parser (nothing runs): an unknown command, flag or argument count
// fails.
func TestWorkflowsUseRealCommands(t *testing.T) {
	t.Parallel()
	files, _ := filepath.Glob("github-actions/*.yml")
	if len(files) < 2 {
		t.Fatalf("examples: %v, want deploy and rollback", files)
	}
	seen := map[string]bool{}
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		var wf workflow
		if err := yaml.Unmarshal(b, &wf); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		for _, job := range wf.Jobs {
			for _, step := range job.Steps {
				for _, line := range commandLines(step.Run) {
					words := shellWords(line)
					if len(words) == 0 || words[0] != "oops" {
						continue
					}
					root := cmd.NewRoot(cmd.NewFactory("test"))
					c, args, err := root.Find(words[1:])
					if err != nil || c == root {
						t.Errorf("%s: %q: no such command (%v)", file, line, err)
						continue
					}
					if err := c.ParseFlags(args); err != nil {
						t.Errorf("%s: %q: %v", file, line, err)
						continue
					}
					if err := c.ValidateArgs(c.Flags().Args()); err != nil {
						t.Errorf("%s: %q: %v", file, line, err)
					}
					seen[c.Name()] = true
				}
			}
		}
	}
	for _, want := range []string{"publish", "deploy", "rollback", "status"} {
		if !seen[want] {
			t.Errorf("no example runs oops %s", want)
		}
	}
}

// commandLines splits a run: script into command lines: continuations
// joined, pipes and && cut, shell keywords dropped.
func commandLines(script string) []string {
	script = strings.ReplaceAll(script, "\\\n", " ")
	var out []string
	for _, line := range strings.Split(script, "\n") {
		for _, part := range strings.FieldsFunc(line, func(r rune) bool { return r == '|' || r == ';' }) {
			part = strings.TrimSpace(part)
			for _, kw := range []string{"then ", "else ", "do "} {
				part = strings.TrimPrefix(part, kw)
			}
			if part != "" && !strings.HasPrefix(part, "#") {
				out = append(out, part)
			}
		}
	}
	return out
}

// shellWords splits a command line as sh would for these examples: single
// and double quotes, variables and ${{ }} expressions kept as one word.
func shellWords(line string) []string {
	var words []string
	var cur strings.Builder
	inWord := false
	var quote rune
	for _, r := range line {
		switch {
		case quote != 0 && r == quote:
			quote = 0
		case quote != 0:
			cur.WriteRune(r)
		case r == '\'' || r == '"':
			quote, inWord = r, true
		case r == ' ' || r == '\t':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteRune(r)
			inWord = true
		}
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words
}
