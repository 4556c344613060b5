package store

import (
	"fmt"
	"strings"
)

// CheckKey refuses keys that do not name one object the same way on every
// backend: empty segments, "." and "..", a leading or trailing "/", and
// backslashes or NULs (a folder separator or terminator on some disks).
func CheckKey(key string) error {
	bad := func(why string) error { return fmt.Errorf("invalid key %q: %s", key, why) }
	switch {
	case key == "":
		return bad("empty")
	case strings.HasPrefix(key, "/"):
		return bad("starts with /")
	case strings.HasSuffix(key, "/"):
		return bad("ends with /")
	case strings.ContainsAny(key, "\\\x00"):
		return bad("contains a backslash or NUL")
	}
	for part := range strings.SplitSeq(key, "/") {
		switch part {
		case "":
			return bad("empty path segment")
		case ".", "..":
			return bad("contains a . or .. segment")
		}
	}
	return nil
}

// CheckMeta enforces what every backend can store as user metadata: S3
// sends it as HTTP headers, so keys are lower-case [a-z0-9-] and values
// printable ASCII. Backends refuse anything else instead of mangling it.
func CheckMeta(meta map[string]string) error {
	for k, v := range meta {
		if k == "" {
			return fmt.Errorf("metadata key is empty")
		}
		for _, r := range k {
			if (r < 'a' || r > 'z') && (r < '0' || r > '9') && r != '-' {
				return fmt.Errorf("metadata key %q: use lower-case letters, digits and -", k)
			}
		}
		for _, r := range v {
			if r < 0x20 || r > 0x7e {
				return fmt.Errorf("metadata %q: value must be printable ASCII", k)
			}
		}
	}
	return nil
}
