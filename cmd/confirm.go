package cmd

import (
	"bufio"
	"fmt"
	"strings"
)

// confirm asks a yes/no question on a terminal. Without a terminal it
// refuses, so a script never changes traffic without --yes.
func (f *Factory) confirm(yes bool, question string) (bool, error) {
	if yes {
		return true, nil
	}
	if !f.IO.InTTY {
		return false, withHint(usageErrorf("%s needs confirmation and stdin is not a terminal", question), "pass --yes to proceed without asking, or --dry-run to see the plan")
	}
	fmt.Fprintf(f.IO.ErrOut, "%s [y/N] ", question)
	line, err := bufio.NewReader(f.IO.In).ReadString('\n')
	if err != nil && line == "" {
		return false, nil
	}
	switch strings.ToLower(strings.TrimSpace(line)) {
	case "y", "yes":
		return true, nil
	}
	return false, nil
}
