package dns

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/oops-deploy/oops/release"
)

const sha = "0123456789abcdef0123456789abcdef01234567"

func TestParseMeta(t *testing.T) {
	for _, tc := range []struct {
		name     string
		values   []string
		check    func(m meta) bool
		problems int
	}{
		{"as oops writes it", []string{`"blue=` + sha + `"`, `"green-installing=` + sha + `"`, `"live=green"`, `"base=blue"`, `"switched=2026-12-01T02:00:00Z"`, `"weights=90/10"`, `"id=abc123"`, `"by=me@host"`},
			func(m meta) bool {
				return m.commit[release.Blue] == sha && m.installing[release.Green] == sha && m.live == release.Green && m.base == release.Blue &&
					m.switched.Equal(time.Date(2026, 12, 1, 2, 0, 0, 0, time.UTC)) && m.hasW && m.weights == [2]int{90, 10} && m.id == "abc123" && m.by == "me@host"
			}, 0},
		{"several strings in one value", []string{`"blue=` + sha + `" "live=blue"`}, func(m meta) bool { return m.commit[release.Blue] == sha && m.live == release.Blue }, 0},
		{"escapes", []string{`"by=a\"b\\c\040d"`}, func(m meta) bool { return m.by == `a"b\c d` }, 0},
		{"hand edits are left out, the rest kept", []string{`"blue=HEAD"`, `"live=Blue"`, `"weights=300/0"`, `"switched=yesterday"`, `"colour=red"`, `"nothing"`, `"green=` + sha + `"`},
			func(m meta) bool {
				return m.commit[release.Blue] == "" && m.live == "" && !m.hasW && m.switched.IsZero() && m.commit[release.Green] == sha
			}, 6},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, problems := parseMeta(tc.values)
			if !tc.check(m) {
				t.Errorf("parsed %+v", m)
			}
			if len(problems) != tc.problems {
				t.Errorf("problems %q, want %d", problems, tc.problems)
			}
		})
	}
}

// FuzzParseMeta feeds hand-edited TXT values to parseMeta: it never
// panics, and what it accepts is written back as values that read the
// same (the next switch rewrites the record from it).
func FuzzParseMeta(f *testing.F) {
	for _, s := range []string{
		`"blue=` + sha + `" "live=blue" "switched=2026-12-01T02:00:00Z" "weights=100/0" "id=x1"`,
		`"base=green" "green-installing=` + sha + `"`,
		`"by=a\"b\\c\032d\300"`, `"unterminated`, `\`, `"\9999"`, `a b c`, `"="`, `"weights=/"`, `"weights=-1/5"`,
		`"switched=2026-12-01T02:00:00+05:00"`, `"id=` + strings.Repeat("x", 100) + `"`, `"by=` + strings.Repeat("y", 300) + `"`, "\"by=\x00\xff\"",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		m, _ := parseMeta([]string{v})
		again, problems := parseMeta(m.values())
		if len(problems) > 0 {
			t.Fatalf("oops's own record does not read back: %q from %q", problems, m.values())
		}
		if !reflect.DeepEqual(again, m) {
			t.Fatalf("round trip changed it:\n%+v\n%+v", m, again)
		}
	})
}
