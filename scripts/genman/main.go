// Command genman writes oops' man pages into the folder it is given:
//
//	go run ./scripts/genman man
package main

import (
	"fmt"
	"os"

	"github.com/oops-deploy/oops/cmd"
	"github.com/oops-deploy/oops/internal/mangen"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: genman DIR")
		os.Exit(2)
	}
	version := os.Getenv("VERSION")
	if version == "" {
		version = "dev"
	}
	if err := mangen.Generate(cmd.NewRoot(cmd.NewFactory(version)), os.Args[1], version); err != nil {
		fmt.Fprintln(os.Stderr, "genman:", err)
		os.Exit(1)
	}
}
