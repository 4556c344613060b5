package dns

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/oops-deploy/oops/release"
)

// meta is what oops keeps in the TXT record _oops.<dns-name>, beside the
// colors' records in the same hosted zone: Route 53 has no tags on records,
// and a TXT record can change in the same change batch as the weights, so
// the bookkeeping of a switch (when, to which weights, where a canary
// returns to) lands atomically with the switch itself or not at all.
type meta struct {
	// commit and installing are per color (SetCommit, SetInstalling).
	commit     map[release.Color]string
	installing map[release.Color]string
	// base is the color that had all the traffic when the current canary
	// began; "" outside a canary.
	base release.Color
	// live is the color the last switch gave the larger weight to: where
	// a repair puts traffic when the weights say nothing (both 0).
	live release.Color
	// switched is when the last switch was sent; weights the weights it
	// set (blue, green); id names it, so that a change whose answer was
	// lost can be recognised on a second read.
	switched time.Time
	weights  [2]int
	hasW     bool
	id       string
	// by is who switched, in records older oops versions wrote; kept
	// for status until the next switch drops it.
	by string
}

// Keys of the TXT record's "key=value" strings.
const (
	keyBase     = "base"
	keyLive     = "live"
	keySwitched = "switched"
	keyWeights  = "weights"
	keyID       = "id"
	keyBy       = "by"
	suffixInst  = "-installing"
)

var (
	shaRE = regexp.MustCompile(`^[0-9a-f]{40}$`)
	idRE  = regexp.MustCompile(`^[0-9a-zA-Z-]{1,64}$`)
)

// parseMeta reads the TXT record's values as Route 53 returns them (each a
// quoted string). It never fails: an entry it cannot use, from a hand edit
// or a newer oops, is left out and described in problems, because
// bookkeeping must not block a rollback (the next switch rewrites the
// record without it).
func parseMeta(values []string) (m meta, problems []string) {
	m.commit = map[release.Color]string{}
	m.installing = map[release.Color]string{}
	bad := func(v, why string) { problems = append(problems, fmt.Sprintf("%s: %s", v, why)) }
	for _, raw := range values {
		for _, v := range txtStrings(raw) {
			k, val, ok := strings.Cut(v, "=")
			if !ok {
				bad(strconv.Quote(v), "not key=value")
				continue
			}
			switch {
			case k == keyBase || k == keyLive:
				c, err := release.ParseColor(val)
				if err != nil || string(c) != val {
					bad(strconv.Quote(v), "not blue or green")
					continue
				}
				if k == keyBase {
					m.base = c
				} else {
					m.live = c
				}
			case k == keySwitched:
				ts, err := time.Parse(time.RFC3339, val)
				if err != nil {
					bad(strconv.Quote(v), "not a time like 2006-01-02T15:04:05Z")
					continue
				}
				m.switched = ts.UTC()
			case k == keyWeights:
				b, g, ok := strings.Cut(val, "/")
				bw, err1 := strconv.Atoi(b)
				gw, err2 := strconv.Atoi(g)
				if !ok || err1 != nil || err2 != nil || bw < 0 || gw < 0 || bw > maxWeight || gw > maxWeight {
					bad(strconv.Quote(v), "not BLUE/GREEN weights like 100/0")
					continue
				}
				m.weights, m.hasW = [2]int{bw, gw}, true
			case k == keyID:
				if !idRE.MatchString(val) {
					bad(strconv.Quote(v), "not a switch id")
					continue
				}
				m.id = val
			case k == keyBy:
				m.by = clip(val)
			default:
				name, inst := strings.CutSuffix(k, suffixInst)
				c := release.Color(name)
				if !c.Valid() {
					bad(strconv.Quote(v), "unknown key")
					continue
				}
				if !shaRE.MatchString(val) {
					bad(strconv.Quote(v), "not a full commit SHA (40 hex digits)")
					continue
				}
				if inst {
					m.installing[c] = val
				} else {
					m.commit[c] = val
				}
			}
		}
	}
	return m, problems
}

// values is the record's content, one quoted string per entry, in a fixed
// order so that an unchanged meta is an unchanged record.
func (m meta) values() []string {
	var kv []string
	for _, c := range []release.Color{release.Blue, release.Green} {
		if v := m.commit[c]; v != "" {
			kv = append(kv, string(c)+"="+v)
		}
		if v := m.installing[c]; v != "" {
			kv = append(kv, string(c)+suffixInst+"="+v)
		}
	}
	if m.live != "" {
		kv = append(kv, keyLive+"="+string(m.live))
	}
	if m.base != "" {
		kv = append(kv, keyBase+"="+string(m.base))
	}
	if !m.switched.IsZero() {
		kv = append(kv, keySwitched+"="+m.switched.UTC().Format(time.RFC3339))
	}
	if m.hasW {
		kv = append(kv, fmt.Sprintf("%s=%d/%d", keyWeights, m.weights[0], m.weights[1]))
	}
	if m.id != "" {
		kv = append(kv, keyID+"="+m.id)
	}
	if m.by != "" {
		kv = append(kv, keyBy+"="+m.by)
	}
	out := make([]string, len(kv))
	for i, s := range kv {
		out[i] = txtQuote(s)
	}
	return out
}

// maxBy keeps "by=<who>" within one TXT string (255 bytes).
const maxBy = 250

func clip(who string) string { return who[:min(len(who), maxBy)] }

// clone copies the maps, so that a plan's meta is its own.
func (m meta) clone() meta {
	m.commit = cloneMap(m.commit)
	m.installing = cloneMap(m.installing)
	return m
}

func cloneMap(in map[release.Color]string) map[release.Color]string {
	out := make(map[release.Color]string, len(in))
	for k, v := range in {
		out[k] = v
	}
	return out
}

// txtQuote quotes s as one TXT character-string: Route 53 takes "..." with
// \" and \\ escaped, and at most 255 characters (oops's entries are short;
// a longer "by" is cut).
func txtQuote(s string) string {
	if len(s) > 255 {
		s = s[:255]
	}
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c < 0x20 || c >= 0x7f:
			fmt.Fprintf(&b, "\\%03o", c)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// txtStrings splits one TXT value as Route 53 returns it ("a" "b", with
// \" \\ and \OOO (three octal digits) escapes; unquoted words are strings too) into its
// character-strings.
func txtStrings(v string) []string {
	var out []string
	i := 0
	for i < len(v) {
		for i < len(v) && v[i] == ' ' {
			i++
		}
		if i >= len(v) {
			break
		}
		var b []byte
		quoted := v[i] == '"'
		if quoted {
			i++
		}
		for i < len(v) {
			c := v[i]
			if quoted && c == '"' {
				i++
				break
			}
			if !quoted && c == ' ' {
				break
			}
			if c == '\\' && i+1 < len(v) {
				if i+3 < len(v) && isOctal(v[i+1]) && isOctal(v[i+2]) && isOctal(v[i+3]) {
					n, _ := strconv.ParseUint(v[i+1:i+4], 8, 16)
					if n <= 0o377 {
						b = append(b, byte(n))
						i += 4
						continue
					}
				}
				b = append(b, v[i+1])
				i += 2
				continue
			}
			b = append(b, c)
			i++
		}
		out = append(out, string(b))
	}
	return slices.Clip(out)
}

func isOctal(c byte) bool { return c >= '0' && c <= '7' }
