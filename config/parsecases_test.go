package config_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/oops-deploy/oops/config"
)

// parseCase is a .oopsrc made of a minimal valid start and rest, and what
// loading it says: "" when it loads, else part of its *config.Error.
type parseCase struct{ name, rest, want string }

// checkParseCases loads each case as /p/.oopsrc.
func checkParseCases(t *testing.T, tests []parseCase) {
	t.Helper()
	const base = `{"application-name": "a", "store": "s",` + "\n"
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := config.Parse("/p/.oopsrc", []byte(base+tc.rest))
			if tc.want == "" {
				if err != nil {
					t.Fatalf("Parse: %v", err)
				}
				return
			}
			var ce *config.Error
			if !errors.As(err, &ce) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Parse: %v\nwant a *config.Error containing %q", err, tc.want)
			}
		})
	}
}
