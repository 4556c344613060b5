// Command oops: blue/green release history and instant rollback.
package main

import (
	"os"
	"runtime/debug"

	"github.com/oops-deploy/oops/cmd"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	tuneGC()
	os.Exit(cmd.Main(cmd.NewFactory(version), os.Args[1:]))
}

// tuneGC lets the heap grow to 5 times what is live before collecting,
// instead of twice, with a soft limit of 1 GiB on the whole process. Most
// oops commands live for well under a second and build one large value
// (oops list at 10,000 releases: a snapshot of 4.6 MB decoded into 10,000
// releases); starting from Go's 4 MB first goal, the collector ran many
// times while the heap grew, for nothing the process would keep. The
// limit keeps a long-running oops proxy, or a store far larger, from
// holding more than that. GOGC and GOMEMLIMIT, when set, win.
func tuneGC() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(400)
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(1 << 30)
	}
}
