package cmd

import (
	"context"
	"testing"

	"github.com/spf13/cobra"
)

func TestDoctorFlags(t *testing.T) {
	t.Parallel()
	checkFlags(t, func(runF func(context.Context, *DoctorOptions) error) *cobra.Command {
		return newDoctorCmd(flagFactory(), runF)
	}, []flagCase[DoctorOptions]{
		{args: []string{"doctor"}, want: DoctorOptions{}},
		{args: []string{"doctor", "--json"}, want: DoctorOptions{JSON: true}},
		{args: []string{"doctor", "--fix"}, usage: "unknown flag: --fix"},
		{args: []string{"doctor", "store"}, usage: `oops doctor takes no arguments, got "store"`},
	})
}
