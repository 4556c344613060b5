package main

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/rogpeppe/go-internal/testscript"

	"github.com/oops-deploy/oops/internal/awstest"
	"github.com/oops-deploy/oops/internal/faultproxy"
	"github.com/oops-deploy/oops/target/elb/elbtest"
)

// TestTolerantScripts runs the scripts in testdata/tolerant: corrupt
// bookkeeping and an unreachable store (S3 behind the fault proxy, or a
// directory that cannot be written) must not block oops rollback. Each
// script has its own AWS account in one moto, its own fault proxy, and its
// own XDG_STATE_HOME (the spool of events recorded without the store).
//
// Besides the Classic ELB commands (elb-fixture, elb-tag, elb-show, fault,
// fault-clear, ...):
//
//	s3-bucket NAME          create an S3 bucket in this script's account
//	s3-put BUCKET KEY FILE  store FILE's bytes at KEY, bypassing oops and the faults
//	store-down MODE         every S3 call fails: 503 (MODE fail), the
//	                        connection is closed unanswered (cut), or 403 (denied)
//	truncate FILE N         cut FILE to its first N bytes
//	perm FILE MODE          FILE (or folder) has exactly this octal mode
//	files DIR N [MODE]      DIR holds exactly N files (each with this octal mode)
func TestTolerantScripts(t *testing.T) {
	t.Parallel() // scripts of every test share -parallel's slots: no idle slot between tests
	m := elbtest.Start(t)
	cmds := elbScriptCmds()
	for name, fn := range tolerantCmds() {
		cmds[name] = fn
	}
	runFaultScripts(t, "testdata/tolerant", m.URL, 300000000000, cmds, func(env *testscript.Env) {
		env.Setenv("XDG_STATE_HOME", filepath.Join(env.WorkDir, "state"))
	})
}

func tolerantCmds() map[string]scriptCmd {
	s3client := func(ts *testscript.TestScript) *s3.Client {
		return s3.NewFromConfig(awstest.Config(faultState(ts).moto), func(o *s3.Options) { o.UsePathStyle = true })
	}
	return map[string]scriptCmd{
		"s3-bucket": func(ts *testscript.TestScript, neg bool, args []string) {
			noNeg(ts, neg)
			if len(args) != 1 {
				ts.Fatalf("usage: s3-bucket NAME")
			}
			_, err := s3client(ts).CreateBucket(awsCtx(ts), &s3.CreateBucketInput{Bucket: aws.String(args[0])})
			ts.Check(err)
		},
		"s3-put": func(ts *testscript.TestScript, neg bool, args []string) {
			noNeg(ts, neg)
			if len(args) != 3 {
				ts.Fatalf("usage: s3-put BUCKET KEY FILE")
			}
			data, err := os.ReadFile(ts.MkAbs(args[2]))
			ts.Check(err)
			_, err = s3client(ts).PutObject(awsCtx(ts), &s3.PutObjectInput{Bucket: aws.String(args[0]), Key: aws.String(args[1]), Body: bytes.NewReader(data)})
			ts.Check(err)
		},
		"store-down": func(ts *testscript.TestScript, neg bool, args []string) {
			noNeg(ts, neg)
			if len(args) != 1 {
				ts.Fatalf("usage: store-down fail|cut|denied")
			}
			// One rule for all of S3, not one per operation: the outage is of
			// the service, and the rule is used once any S3 call meets it
			// (which operations a command makes is not the script's business).
			r := faultproxy.Rule{Action: "*", Match: faultproxy.SignedForService("s3")}
			switch args[0] {
			case "fail":
				r.Status, r.Body = http.StatusServiceUnavailable, `<Error><Code>ServiceUnavailable</Code><Message>injected by the test</Message></Error>`
			case "cut":
				r.Cut = true
			case "denied":
				r.Status, r.Body = http.StatusForbidden, `<Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>`
			default:
				ts.Fatalf("store-down: unknown mode %q", args[0])
			}
			faultState(ts).proxy.Add(r)
		},
		"truncate": func(ts *testscript.TestScript, neg bool, args []string) {
			noNeg(ts, neg)
			if len(args) != 2 {
				ts.Fatalf("usage: truncate FILE N")
			}
			n, err := strconv.ParseInt(args[1], 10, 64)
			ts.Check(err)
			ts.Check(os.Truncate(ts.MkAbs(args[0]), n))
		},
		"perm": func(ts *testscript.TestScript, neg bool, args []string) {
			noNeg(ts, neg)
			if len(args) != 2 {
				ts.Fatalf("usage: perm FILE MODE")
			}
			want, err := strconv.ParseUint(args[1], 8, 32)
			ts.Check(err)
			fi, err := os.Stat(ts.MkAbs(args[0]))
			ts.Check(err)
			if got := fi.Mode().Perm(); uint64(got) != want {
				ts.Fatalf("%s has mode %o, want %o", args[0], got, want)
			}
		},
		"files": func(ts *testscript.TestScript, neg bool, args []string) {
			noNeg(ts, neg)
			if len(args) != 2 && len(args) != 3 {
				ts.Fatalf("usage: files DIR N [MODE]")
			}
			want, err := strconv.Atoi(args[1])
			ts.Check(err)
			entries, err := os.ReadDir(ts.MkAbs(args[0]))
			if os.IsNotExist(err) {
				entries, err = nil, nil
			}
			ts.Check(err)
			if len(entries) != want {
				ts.Fatalf("%s holds %d files, want %d", args[0], len(entries), want)
			}
			if len(args) == 3 {
				mode, err := strconv.ParseUint(args[2], 8, 32)
				ts.Check(err)
				for _, e := range entries {
					fi, err := e.Info()
					ts.Check(err)
					if uint64(fi.Mode().Perm()) != mode {
						ts.Fatalf("%s has mode %o, want %o", e.Name(), fi.Mode().Perm(), mode)
					}
				}
			}
			fmt.Fprintf(ts.Stdout(), "%d files\n", len(entries))
		},
	}
}
