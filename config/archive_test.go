package config_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/oops-deploy/oops/config"
)

// TestArchiveLimits: the keys that raise the archive limits are parsed
// when the file loads; a bad one is an error at file:line:column.
func TestArchiveLimits(t *testing.T) {
	base := `{"application-name": "a", "store": "s",` + "\n"
	tests := []struct {
		name, line string
		size       int64
		entries    int
		ratio      int
		want       string // "": loads fine
	}{
		{"unset", `"region": "x"}`, 0, 0, 0, ""},
		{"GiB", `"archive-max-size": "8GiB"}`, 8 << 30, 0, 0, ""},
		{"MB and spaces", `"archive-max-size": "500 MB"}`, 500e6, 0, 0, ""},
		{"bytes", `"archive-max-size": "1048576"}`, 1 << 20, 0, 0, ""},
		{"all", `"archive-max-size": "1TiB", "archive-max-entries": 500000, "archive-max-ratio": 1000}`, 1 << 40, 500000, 1000, ""},
		{"size unit", `"archive-max-size": "8 gigs"}`, 0, 0, 0, `:2:1: archive-max-size "8 gigs" is not a size`},
		{"size zero", `"archive-max-size": "0GiB"}`, 0, 0, 0, `:2:1: archive-max-size "0GiB" is not a size`},
		{"size overflow", `"archive-max-size": "99999999999EiB"}`, 0, 0, 0, `:2:1: archive-max-size "99999999999EiB" is not a size`},
		{"size as a number", `"archive-max-size": 100}`, 0, 0, 0, `:2:1: "archive-max-size" must be a string, not a number`},
		{"entries", "\n" + `"archive-max-entries": 0}`, 0, 0, 0, `:3:1: archive-max-entries 0 must be 1 or more`},
		{"ratio", `"archive-max-ratio": -5}`, 0, 0, 0, `:2:1: archive-max-ratio -5 must be 1 or more`},
		{"typo", `"archive-max-entrys": 5}`, 0, 0, 0, `did you mean "archive-max-entries"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := config.Parse("/p/.oopsrc", []byte(base+tc.line))
			if tc.want != "" {
				var ce *config.Error
				if !errors.As(err, &ce) || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("Parse = %v; want a config error containing %q", err, tc.want)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			v := c.Values
			if v.ArchiveMaxSize != tc.size || v.ArchiveMaxEntries != tc.entries || v.ArchiveMaxRatio != tc.ratio {
				t.Errorf("Values = size %d, entries %d, ratio %d; want %d, %d, %d", v.ArchiveMaxSize, v.ArchiveMaxEntries, v.ArchiveMaxRatio, tc.size, tc.entries, tc.ratio)
			}
		})
	}
}
