package archive

import (
	"testing"

	"github.com/oops-deploy/oops/release/archive/archivetest"
)

// ent is one entry of a test archive (archivetest.Entry).
type ent = archivetest.Entry

func file(name, body string) ent { return archivetest.File(name, body) }
func link(name, to string) ent   { return archivetest.Link(name, to) }
func dir(name string) ent        { return archivetest.Dir(name) }

func tarGz(tb testing.TB, es ...ent) []byte { return archivetest.TarGz(tb, es...) }
func zipOf(tb testing.TB, es ...ent) []byte { return archivetest.Zip(tb, es...) }

// zeros is a file entry of n bytes of zeros: a bomb for a few KiB.
func zeros(name string, n int) ent {
	return ent{Name: name, Body: string(make([]byte, n)), Mode: 0o644}
}

// chain is the attack of issue 11: a/b -> .. is inside; a path through it
// creates c -> ../../.. (lexically a/b/a, really above the release); then
// c/escaped is written through it.
func chain() []ent {
	return []ent{
		link("a/b", ".."),
		link("a/b/a/b/a/b/c", "../../.."),
		file("c/escaped", "owned"),
		file("app", "real"),
	}
}
