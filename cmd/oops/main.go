// Command oops: blue/green release history and instant rollback.
package main

import (
	"os"

	"github.com/oops-deploy/oops/cmd"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	os.Exit(cmd.Main(cmd.NewFactory(version), os.Args[1:]))
}
