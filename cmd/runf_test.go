package cmd

import (
	"context"
	"fmt"
	"io"
	"reflect"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// Helpers for the TestXFlags tests: each builds its command with a
// recording runF, so flags are parsed and checked, and nothing else runs
// (no .oopsrc, store or target is touched).

// flagFactory is a Factory for flag tests: real functions, no streams to
// a terminal.
func flagFactory() *Factory {
	f := NewFactory("test")
	f.IO = &IOStreams{In: strings.NewReader(""), Out: io.Discard, ErrOut: io.Discard}
	return f
}

// runFlags runs args (the command path after oops) on c under a root
// wired like NewRoot's for flag errors, so a bad flag is the same usage
// error a user gets.
func runFlags(c *cobra.Command, args ...string) error {
	root := &cobra.Command{Use: "oops", SilenceUsage: true, SilenceErrors: true}
	root.SetFlagErrorFunc(flagUsageError)
	root.SetOut(io.Discard)
	root.SetErr(io.Discard)
	root.AddCommand(c)
	root.SetArgs(args)
	return root.ExecuteContext(context.Background())
}

// flagCase is one row of a TestXFlags table: args, and either the flag
// fields of the options the run gets or a part of the usage error.
type flagCase[O any] struct {
	args  []string
	want  O
	usage string
}

// checkFlags runs each case through build (the command's constructor
// with the recording runF it is given): a usage error exits 2 and never
// reaches the run; otherwise the run gets the flags and every dependency.
func checkFlags[O any](t *testing.T, build func(runF func(context.Context, *O) error) *cobra.Command, cases []flagCase[O]) {
	t.Helper()
	for _, tc := range cases {
		var got *O
		c := build(func(_ context.Context, o *O) error { got = o; return nil })
		err := runFlags(c, tc.args...)
		name := strings.Join(tc.args, " ")
		if tc.usage != "" {
			if code := ExitCode(err); code != ExitUsage || !strings.Contains(fmt.Sprint(err), tc.usage) {
				t.Errorf("oops %s: exit %d (%v), want exit %d with %q", name, code, err, ExitUsage, tc.usage)
			}
			if got != nil {
				t.Errorf("oops %s: ran after a usage error", name)
			}
			continue
		}
		if err != nil || got == nil {
			t.Errorf("oops %s: %v, ran: %v", name, err, got != nil)
			continue
		}
		if g, w := flagsOf(got), flagsOf(&tc.want); g != w {
			t.Errorf("oops %s: options %s, want %s", name, g, w)
		}
		if u := unbound(got); len(u) > 0 {
			t.Errorf("oops %s: dependencies not bound: %v", name, u)
		}
	}
}

// flagsOf prints the flag fields of options: every field that is not a
// dependency (a func or a pointer).
func flagsOf(opts any) string {
	v := reflect.ValueOf(opts).Elem()
	var b strings.Builder
	for i := range v.NumField() {
		if k := v.Field(i).Kind(); k != reflect.Func && k != reflect.Pointer {
			fmt.Fprintf(&b, "%s=%v ", v.Type().Field(i).Name, v.Field(i).Interface())
		}
	}
	return strings.TrimSpace(b.String())
}

// unbound names the dependencies of options left nil: the run would
// panic on them.
func unbound(opts any) []string {
	v := reflect.ValueOf(opts).Elem()
	var names []string
	for i := range v.NumField() {
		if f := v.Field(i); (f.Kind() == reflect.Func || f.Kind() == reflect.Pointer) && f.IsNil() {
			names = append(names, v.Type().Field(i).Name)
		}
	}
	return names
}
