package release

import (
	"regexp"
	"strings"
	"testing"
)

// FuzzIsFullSHA: 40 lower-case hex digits, nothing else.
func FuzzIsFullSHA(f *testing.F) {
	for _, s := range []string{strings.Repeat("a", 40), strings.Repeat("A", 40), strings.Repeat("0", 39), strings.Repeat("f", 41), strings.Repeat("g", 40)} {
		f.Add(s)
	}
	re := regexp.MustCompile(`^[0-9a-f]{40}$`)
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := IsFullSHA(s), re.MatchString(s); got != want {
			t.Fatalf("IsFullSHA(%q) = %v, want %v", s, got, want)
		}
	})
}
