package main

import (
	"errors"
	"os/exec"
	"strconv"

	"github.com/rogpeppe/go-internal/testscript"
)

// scriptTKey holds the script's testscript.T, for commands whose checks
// run at the script's end (see verifyAtEnd).
type scriptTKey struct{}

// setupEnv prepares every script's environment: no AWS reachable unless a
// script starts moto itself, and a fixed user for events.
func setupEnv(env *testscript.Env) error {
	env.Values[scriptTKey{}] = env.T()
	env.Setenv("USER", "tester")
	env.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	env.Setenv("HOME", env.WorkDir)
	return nil
}

// scriptCmds are extra testscript commands shared by the scripts.
func scriptCmds() map[string]func(ts *testscript.TestScript, neg bool, args []string) {
	cmds := map[string]func(ts *testscript.TestScript, neg bool, args []string){
		// exits CODE PROG ARGS...: run PROG and require exit status CODE;
		// stdout and stderr are kept for the next stdout/stderr checks.
		"exits": func(ts *testscript.TestScript, neg bool, args []string) {
			if neg || len(args) < 2 {
				ts.Fatalf("usage: exits CODE PROG [ARGS...]")
			}
			want, err := strconv.Atoi(args[0])
			ts.Check(err)
			err = ts.Exec(args[1], args[2:]...)
			got := 0
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				got = ee.ExitCode()
			} else if err != nil {
				ts.Fatalf("run %s: %v", args[1], err)
			}
			if got != want {
				ts.Fatalf("%s exited %d, want %d", args[1], got, want)
			}
		},
	}
	for name, fn := range awsCmds() {
		cmds[name] = fn
	}
	for name, fn := range archiveCmds() {
		cmds[name] = fn
	}
	// The Route 53 fixture, on the moto account of aws-start (not through
	// its proxy: the fixture's calls are not oops's).
	for name, fn := range dnsFixtureCmds(func(ts *testscript.TestScript) string { return ts.Getenv("MOTO_ACCOUNT_URL") }) {
		cmds[name] = fn
	}
	for name, fn := range notifyCmds() {
		cmds[name] = fn
	}
	return cmds
}
