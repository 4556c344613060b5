package main

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"

	"github.com/rogpeppe/go-internal/testscript"
)

// notifyCmds are the testscript commands of the hooks and notifications
// scripts.
func notifyCmds() map[string]func(ts *testscript.TestScript, neg bool, args []string) {
	return map[string]func(ts *testscript.TestScript, neg bool, args []string){
		// webhook-receiver FILE: a webhook on 127.0.0.1 for the rest of
		// the script, which appends each body it gets to FILE as one line;
		// every @WEBHOOK@ in .oopsrc becomes its URL.
		"webhook-receiver": func(ts *testscript.TestScript, neg bool, args []string) {
			if neg || len(args) != 1 {
				ts.Fatalf("usage: webhook-receiver FILE")
			}
			out := ts.MkAbs(args[0])
			var mu sync.Mutex
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				body, _ := io.ReadAll(r.Body)
				mu.Lock()
				defer mu.Unlock()
				f, err := os.OpenFile(out, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
				if err != nil {
					http.Error(w, err.Error(), http.StatusInternalServerError)
					return
				}
				defer f.Close()
				_, _ = f.Write(append(bytes.ReplaceAll(body, []byte("\n"), nil), '\n'))
			}))
			ts.Defer(srv.Close)
			rc := ts.MkAbs(".oopsrc")
			data, err := os.ReadFile(rc)
			ts.Check(err)
			ts.Check(os.WriteFile(rc, []byte(strings.ReplaceAll(string(data), "@WEBHOOK@", srv.URL+"/oops")), 0o644))
		},
	}
}
