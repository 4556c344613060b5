// Package release is the domain of oops: releases, colors, events and the
// rules that pick one of them. It knows nothing of AWS, cobra or storage.
package release

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Color is one of the two copies of a service.
type Color string

const (
	Blue  Color = "blue"
	Green Color = "green"
)

// Other returns the opposite color.
func (c Color) Other() Color {
	if c == Blue {
		return Green
	}
	return Blue
}

// Valid reports whether c is blue or green.
func (c Color) Valid() bool { return c == Blue || c == Green }

// ParseColor accepts "blue" or "green" in any case.
func ParseColor(s string) (Color, error) {
	c := Color(strings.ToLower(strings.TrimSpace(s)))
	if !c.Valid() {
		return "", fmt.Errorf("%q is not a color: use blue or green", s)
	}
	return c, nil
}

// Release is one built artifact for one commit of one application.
type Release struct {
	Commit      string    `json:"commit"`
	App         string    `json:"application"`
	Key         string    `json:"key"`
	Size        int64     `json:"size"`
	SHA256      string    `json:"sha256,omitempty"`
	ETag        string    `json:"etag,omitempty"`
	Published   time.Time `json:"published"`
	Publisher   string    `json:"publisher,omitempty"`
	Author      string    `json:"author,omitempty"`
	AuthorEmail string    `json:"author_email,omitempty"`
	Subject     string    `json:"subject,omitempty"`
	CommitTime  time.Time `json:"commit_time,omitzero"`
	Branch      string    `json:"branch,omitempty"`
	Tags        []string  `json:"tags,omitempty"`
	// Dirty: published with --allow-dirty from a working tree whose
	// tracked files differed from the commit, so the artifact may not be
	// what the commit builds.
	Dirty bool `json:"dirty,omitempty"`
	// Bare is true when only the artifact exists (uploaded by another tool),
	// so the descriptive fields came from git or are missing.
	Bare bool `json:"bare,omitempty"`
}

// Short is the 7-character abbreviation of the commit.
func (r Release) Short() string { return Short(r.Commit) }

// Short abbreviates a SHA to 7 characters.
func Short(sha string) string {
	if len(sha) > 7 {
		return sha[:7]
	}
	return sha
}

// Extensions are the artifact formats oops knows, longest first so that
// ".tar.gz" wins over ".gz".
var Extensions = []string{".tar.gz", ".tgz", ".zip"}

// Key is the object key of an artifact, in the original tool's layout:
// <app>/<app>-<full-sha>.<ext>. CodeDeploy and existing buckets rely on it.
func Key(app, sha, ext string) string {
	return app + "/" + app + "-" + sha + ext
}

// Prefix is the key prefix under which an application's artifacts live.
func Prefix(app string) string { return app + "/" + app + "-" }

// IsFullSHA reports whether s is a 40-hex commit id (lower case). A loop,
// not a regexp: oops list asks it of every key in the store (20,000 at
// 10,000 releases), where a regexp was 3% of the listing's CPU.
func IsFullSHA(s string) bool {
	if len(s) != 40 {
		return false
	}
	for i := range len(s) {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// ParseKey recognises an artifact key of app and returns its commit and
// extension.
func ParseKey(app, key string) (sha, ext string, ok bool) {
	rest, found := strings.CutPrefix(key, Prefix(app))
	if !found {
		return "", "", false
	}
	for _, e := range Extensions {
		if s, found := strings.CutSuffix(rest, e); found && IsFullSHA(s) {
			return s, e, true
		}
	}
	return "", "", false
}

// ExtOf returns the artifact extension of a file name, or "" if unknown.
func ExtOf(name string) string {
	lower := strings.ToLower(name)
	for _, e := range Extensions {
		if strings.HasSuffix(lower, e) {
			return e
		}
	}
	return ""
}

// BundleType is the CodeDeploy bundle type for an artifact key.
func BundleType(key string) string {
	switch ExtOf(key) {
	case ".zip":
		return "zip"
	case ".tar.gz", ".tgz":
		return "tgz"
	}
	return ""
}

var (
	// ErrUnknownRevision: git and the store know no such commit.
	ErrUnknownRevision = errors.New("unknown revision")
	// ErrAmbiguous: a prefix matches several commits.
	ErrAmbiguous = errors.New("ambiguous revision")
	// ErrNotPublished: the commit is known but has no release.
	ErrNotPublished = errors.New("no release published for this commit")
)

// HumanSize formats a byte count in binary units ("1.5 MiB"), for messages
// and listings.
func HumanSize(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
