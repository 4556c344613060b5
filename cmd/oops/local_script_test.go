package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/oops-deploy/oops/internal/testport"
	"github.com/rogpeppe/go-internal/testscript"
)

// TestLocalScripts runs the local target scripts in testdata/local: real
// oops, a real proxy and real processes of examples/hello, all on
// 127.0.0.1. Each script gets free ports in $PUBLIC_PORT, $BLUE_PORT,
// $GREEN_PORT and $METRICS_PORT (also replaced in its .oopsrc); every app
// process it started is killed when it ends.
func TestLocalScripts(t *testing.T) {
	t.Parallel() // scripts of every test share -parallel's slots: no idle slot between tests
	if runtime.GOOS == "windows" {
		t.Skip("the local target needs unix")
	}
	cmds := scriptCmds()
	for name, fn := range localScriptCmds() {
		cmds[name] = fn
	}
	for name, fn := range loadScriptCmds() {
		cmds[name] = fn
	}
	testscript.Run(t, testscript.Params{
		Dir:                 "testdata/local",
		RequireExplicitExec: false,
		Setup: func(env *testscript.Env) error {
			if err := setupEnv(env); err != nil {
				return err
			}
			vals := map[string]string{}
			for _, name := range []string{"PUBLIC_PORT", "BLUE_PORT", "GREEN_PORT", "METRICS_PORT"} {
				p, release, err := testport.Reserve()
				if err != nil {
					return err
				}
				env.Defer(release)
				vals[name] = strconv.Itoa(p)
				env.Setenv(name, vals[name])
			}
			// The script's .oopsrc names its ports as $PUBLIC_PORT ...
			rc := filepath.Join(env.WorkDir, ".oopsrc")
			if data, err := os.ReadFile(rc); err == nil {
				out := os.Expand(string(data), func(k string) string { return vals[k] })
				if err := os.WriteFile(rc, []byte(out), 0o644); err != nil {
					return err
				}
			}
			env.Defer(func() { killApps(filepath.Join(env.WorkDir, ".oops", "local")) })
			return nil
		},
		Cmds:      cmds,
		Condition: awsCondition,
	})
}

// killApps kills the process groups of the apps recorded in a state dir.
func killApps(stateDir string) {
	// blue.json (older layout) and blue.<generation>.json.
	paths, _ := filepath.Glob(filepath.Join(stateDir, "[bg][lr]*.json"))
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		var rec struct {
			PID int `json:"pid"`
		}
		if json.Unmarshal(data, &rec) == nil && rec.PID > 0 {
			_ = syscall.Kill(-rec.PID, syscall.SIGKILL)
		}
	}
}

// helloBin is examples/hello, built once per run.
var helloBin = sync.OnceValues(func() ([]byte, error) {
	dir, err := os.MkdirTemp("", "oops-hello-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	out := filepath.Join(dir, "hello")
	if msg, err := exec.Command("go", "build", "-o", out, "../../examples/hello").CombinedOutput(); err != nil {
		return nil, fmt.Errorf("go build examples/hello: %v\n%s", err, msg)
	}
	return os.ReadFile(out)
})

// helloTarball is a tar.gz release of examples/hello; kind "broken" never
// gets healthy, "slow" answers its health check after 1.5s.
func helloTarball(kind string) ([]byte, error) {
	bin, err := helloBin()
	if err != nil {
		return nil, err
	}
	type file struct {
		name string
		body []byte
	}
	files := []file{{"hello", bin}}
	switch kind {
	case "broken":
		files = []file{{"hello", []byte("#!/bin/sh\nHELLO_HEALTHY=false exec ./hello.bin \"$@\"\n")}, {"hello.bin", bin}}
	case "slow":
		files = []file{{"hello", []byte("#!/bin/sh\nHELLO_HEALTH_DELAY=1500ms exec ./hello.bin \"$@\"\n")}, {"hello.bin", bin}}
	case "flaky":
		// Healthy, but GET / answers 500 to 35% of requests.
		files = []file{{"hello", []byte("#!/bin/sh\nHELLO_FAIL_PERCENT=35 exec ./hello.bin \"$@\"\n")}, {"hello.bin", bin}}
	case "sluggish":
		// Healthy, but GET / takes 300ms.
		files = []file{{"hello", []byte("#!/bin/sh\nHELLO_DELAY=300ms exec ./hello.bin \"$@\"\n")}, {"hello.bin", bin}}
	case "":
	default:
		return nil, fmt.Errorf("hello release kind %q: want broken, slow, flaky or sluggish", kind)
	}
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for _, f := range files {
		if err := tw.WriteHeader(&tar.Header{Name: f.name, Mode: 0o755, Size: int64(len(f.body)), Typeflag: tar.TypeReg}); err != nil {
			return nil, err
		}
		if _, err := tw.Write(f.body); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	if err := gz.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// localScriptCmds are the commands of the local target scripts:
//
//	hello-release FILE [broken|slow]  a tar.gz release of examples/hello in
//	                             FILE; broken: its health check always fails;
//	                             slow: its health check answers after 1.5s
//	wait-file GLOB REGEXP        wait (up to 20s) until a file matching GLOB
//	                             matches REGEXP
//	perm FILE MODE               FILE's permission bits are MODE (octal)
//	wait-http URL                wait (up to 20s) until URL answers at all
//	get URL                      GET URL; the body goes to stdout; fails
//	                             unless 200 (X-Oops-Color goes to stderr)
func localScriptCmds() map[string]func(ts *testscript.TestScript, neg bool, args []string) {
	return map[string]func(ts *testscript.TestScript, neg bool, args []string){
		"hello-release": func(ts *testscript.TestScript, neg bool, args []string) {
			if neg || len(args) < 1 || len(args) > 2 {
				ts.Fatalf("usage: hello-release FILE [broken]")
			}
			kind := ""
			if len(args) == 2 {
				kind = args[1]
			}
			data, err := helloTarball(kind)
			ts.Check(err)
			ts.Check(os.WriteFile(ts.MkAbs(args[0]), data, 0o644))
		},
		"perm": func(ts *testscript.TestScript, neg bool, args []string) {
			if neg || len(args) != 2 {
				ts.Fatalf("usage: perm FILE MODE")
			}
			want, err := strconv.ParseUint(args[1], 8, 32)
			ts.Check(err)
			fi, err := os.Stat(ts.MkAbs(args[0]))
			ts.Check(err)
			if got := fi.Mode().Perm(); got != os.FileMode(want) {
				ts.Fatalf("%s has mode %04o, want %04o", args[0], got, want)
			}
		},
		"wait-file": func(ts *testscript.TestScript, neg bool, args []string) {
			if neg || len(args) != 2 {
				ts.Fatalf("usage: wait-file GLOB REGEXP")
			}
			re, err := regexp.Compile(args[1])
			ts.Check(err)
			deadline := time.Now().Add(20 * time.Second)
			for {
				var data []byte
				paths, _ := filepath.Glob(ts.MkAbs(args[0]))
				for _, p := range paths {
					if data, _ = os.ReadFile(p); re.Match(data) {
						return
					}
				}
				if time.Now().After(deadline) {
					ts.Fatalf("%s never matched %s; it holds:\n%s", args[0], args[1], data)
				}
				time.Sleep(20 * time.Millisecond)
			}
		},
		"wait-http": func(ts *testscript.TestScript, neg bool, args []string) {
			if neg || len(args) != 1 {
				ts.Fatalf("usage: wait-http URL")
			}
			c := &http.Client{Timeout: time.Second}
			deadline := time.Now().Add(20 * time.Second)
			for {
				res, err := c.Get(args[0])
				if err == nil {
					res.Body.Close()
					return
				}
				if time.Now().After(deadline) {
					ts.Fatalf("%s never answered: %v", args[0], err)
				}
				time.Sleep(20 * time.Millisecond)
			}
		},
		"get": func(ts *testscript.TestScript, neg bool, args []string) {
			if len(args) != 1 {
				ts.Fatalf("usage: get URL")
			}
			c := &http.Client{Timeout: 10 * time.Second}
			res, err := c.Get(args[0])
			if err != nil {
				if !neg {
					ts.Fatalf("GET %s: %v", args[0], err)
				}
				return
			}
			defer res.Body.Close()
			body, err := io.ReadAll(res.Body)
			ts.Check(err)
			fmt.Fprintf(ts.Stdout(), "%s", body)
			fmt.Fprintf(ts.Stderr(), "X-Oops-Color: %s\n", res.Header.Get("X-Oops-Color"))
			if ok := res.StatusCode == http.StatusOK; ok == neg {
				ts.Fatalf("GET %s: %s", args[0], res.Status)
			}
		},
	}
}
