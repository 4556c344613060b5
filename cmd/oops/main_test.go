package main

import (
	"os"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/oops-deploy/oops/cmd"
)

func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"oops": func() { os.Exit(cmd.Main(cmd.NewFactory("test"), os.Args[1:])) },
	})
}

// TestScripts runs the end-to-end CLI scripts in testdata/script.
func TestScripts(t *testing.T) {
	t.Parallel() // scripts of every test share -parallel's slots: no idle slot between tests
	testscript.Run(t, testscript.Params{
		Dir:                 "testdata/script",
		RequireExplicitExec: false,
		Setup:               setupEnv,
		Cmds:                scriptCmds(),
		Condition:           awsCondition,
	})
}
