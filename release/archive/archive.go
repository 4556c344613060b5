// Package archive validates and unpacks release archives (zip, tar.gz).
// oops publish validates with the same walk that the local target unpacks
// with, so the rules cannot drift: an archive is accepted at publish only
// if it would unpack, and unpacked only if it would have been accepted.
//
// The rules: the archive parses to its end (the zip central directory and
// every entry's checksum; the gzip stream, its trailer and the whole tar
// stream); it holds at least one regular file; every entry is a regular
// file, a directory or a symlink, at a relative path that stays inside the
// release folder and goes through no symlink or file of the archive, named
// once, with names the kernel takes (255 bytes a name, 4095 a link
// target); every symlink resolves inside the release (following the archive's
// other symlinks); and the entry count, the unpacked size and the
// compression ratio stay within Limits.
package archive

import (
	"archive/tar"
	"archive/zip"
	"bufio"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"github.com/oops-deploy/oops/release"
	"io"
	"io/fs"
	"path"
	"strings"
)

// Format is an archive format, recognised by content.
type Format string

// The formats oops releases come in.
const (
	Zip   Format = "zip"
	TarGz Format = "tar.gz"
)

// Limits bound what an archive may unpack to. Zero fields take the
// defaults.
type Limits struct {
	// MaxSize is the total size of the unpacked files, in bytes.
	MaxSize int64
	// MaxEntries is the number of entries (files, folders, links).
	MaxEntries int
	// MaxRatio bounds unpacked size / archive size, once the unpacked
	// size passes RatioFloor (tiny archives compress well and harm no one).
	MaxRatio int
}

// Defaults fit real builds: a Go or Node service is well below them.
const (
	DefaultMaxSize    int64 = 4 << 30
	DefaultMaxEntries       = 100_000
	DefaultMaxRatio         = 200
	// RatioFloor is the unpacked size below which the ratio is not checked.
	RatioFloor int64 = 1 << 20
)

// The .oopsrc keys that raise the limits, named in errors.
const (
	KeyMaxSize    = "archive-max-size"
	KeyMaxEntries = "archive-max-entries"
	KeyMaxRatio   = "archive-max-ratio"
)

// withDefaults fills in zero fields.
func (l Limits) withDefaults() Limits {
	if l.MaxSize <= 0 {
		l.MaxSize = DefaultMaxSize
	}
	if l.MaxEntries <= 0 {
		l.MaxEntries = DefaultMaxEntries
	}
	if l.MaxRatio <= 0 {
		l.MaxRatio = DefaultMaxRatio
	}
	return l
}

// Error is an archive that breaks a rule. Entry is the entry's name as
// stored in the archive, "" when the rule is about the whole archive.
type Error struct {
	Entry string
	Rule  string
}

func (e *Error) Error() string {
	if e.Entry == "" {
		return "invalid archive: " + e.Rule
	}
	return fmt.Sprintf("invalid archive: entry %q %s", e.Entry, e.Rule)
}

func archiveErr(format string, args ...any) error {
	return &Error{Rule: fmt.Sprintf(format, args...)}
}

func entryErr(name, format string, args ...any) error {
	return &Error{Entry: name, Rule: fmt.Sprintf(format, args...)}
}

// Summary describes a valid archive.
type Summary struct {
	Format  Format
	Entries int
	Files   int
	// Size is the total size of the unpacked files, in bytes.
	Size int64
}

// Sniff recognises the format of an archive by its first bytes.
func Sniff(r io.ReaderAt, size int64) (Format, error) {
	if size == 0 {
		return "", archiveErr("the file is empty")
	}
	head := make([]byte, 4)
	n, err := r.ReadAt(head, 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("read archive: %w", err)
	}
	head = head[:n]
	switch {
	case bytes.HasPrefix(head, []byte("PK\x03\x04")), bytes.HasPrefix(head, []byte("PK\x05\x06")):
		return Zip, nil
	case bytes.HasPrefix(head, []byte{0x1f, 0x8b}):
		return TarGz, nil
	}
	return "", archiveErr("not a zip or tar.gz archive")
}

// Validate reads the whole archive and checks every rule; it writes
// nothing.
func Validate(r io.ReaderAt, size int64, lim Limits) (Summary, error) {
	return walk(r, size, lim, nil)
}

// kind is what a path of the archive is.
type kind uint8

const (
	implicitDir kind = iota + 1 // a parent of an entry, with no entry of its own
	dirKind
	fileKind
	linkKind
)

// sink receives the entries of a valid archive, in order; links come
// last, once every entry is known to be valid.
type sink interface {
	dir(name string) error
	file(name string, perm fs.FileMode, body io.Reader) (int64, error)
	link(name, target string) error
}

// walker applies the rules to one pass over an archive.
type walker struct {
	lim     Limits
	packed  int64 // archive size
	sum     Summary
	kinds   map[string]kind
	targets map[string]string // link path -> target
	links   []string          // link paths in archive order
	out     sink              // nil: validate only
}

func walk(r io.ReaderAt, size int64, lim Limits, out sink) (Summary, error) {
	f, err := Sniff(r, size)
	if err != nil {
		return Summary{}, err
	}
	w := &walker{
		lim: lim.withDefaults(), packed: size, out: out,
		kinds: map[string]kind{}, targets: map[string]string{},
	}
	w.sum.Format = f
	switch f {
	case Zip:
		err = w.zip(r, size)
	default:
		err = w.tarGz(io.NewSectionReader(r, 0, size))
	}
	if err != nil {
		return Summary{}, err
	}
	for _, p := range w.links {
		if _, ok := w.resolve(path.Dir(p), w.targets[p], new(int)); !ok {
			return Summary{}, entryErr(p, "is a symlink to %q, which resolves outside the release folder (or loops)", w.targets[p])
		}
	}
	if w.sum.Files == 0 {
		return Summary{}, archiveErr("holds no regular file")
	}
	if w.out != nil {
		for _, p := range w.links {
			if err := w.out.link(p, w.targets[p]); err != nil {
				return Summary{}, fmt.Errorf("create symlink %s: %w", p, err)
			}
		}
	}
	return w.sum, nil
}

// clean maps an entry name to a path relative to the release folder, or
// says which rule it breaks. "" is the release folder itself.
func clean(name string) (string, error) {
	n := strings.ReplaceAll(name, `\`, "/") // zips made on Windows
	switch {
	case n == "":
		return "", entryErr(name, "has an empty name")
	case strings.ContainsRune(n, 0):
		return "", entryErr(name, "has a NUL byte in its name")
	case strings.HasPrefix(n, "/") || (len(n) >= 2 && n[1] == ':'):
		return "", entryErr(name, "has an absolute path, outside the release folder: entries must be relative")
	}
	c := path.Clean(n)
	if c == "." {
		return "", nil
	}
	if c == ".." || strings.HasPrefix(c, "../") {
		return "", entryErr(name, "leads outside the release folder (..)")
	}
	for rest := c; rest != ""; {
		var part string
		part, rest, _ = strings.Cut(rest, "/")
		if len(part) > maxName {
			return "", entryErr(name, "has a name longer than %d bytes (%q...): no file system takes it", maxName, part[:16])
		}
	}
	return c, nil
}

// add records path p of entry name as k, refusing duplicates and paths
// that go through a file or a symlink of the archive.
func (w *walker) add(name, p string, k kind) error {
	w.sum.Entries++
	if w.sum.Entries > w.lim.MaxEntries {
		return archiveErr("has more than %d entries (raise %s in .oopsrc if the build really has that many)", w.lim.MaxEntries, KeyMaxEntries)
	}
	if p == "" {
		if k != dirKind {
			return entryErr(name, "is the release folder itself but not a folder")
		}
		return nil
	}
	for i := 0; i < len(p); i++ {
		if p[i] != '/' {
			continue
		}
		switch w.kinds[p[:i]] {
		case linkKind:
			return entryErr(name, "goes through the symlink %q: a later entry may not be written through an earlier link", p[:i])
		case fileKind:
			return entryErr(name, "goes through %q, which is a file", p[:i])
		case 0:
			w.kinds[p[:i]] = implicitDir
		}
	}
	switch old := w.kinds[p]; {
	case old == 0:
	case k == dirKind && (old == implicitDir || old == dirKind):
		w.kinds[p] = dirKind
		return nil
	case old == implicitDir:
		return entryErr(name, "is a folder of earlier entries, and now not a folder")
	default:
		return entryErr(name, "is a duplicate: the archive names %q twice", p)
	}
	w.kinds[p] = k
	return nil
}

// within checks an unpacked size of total bytes, reached at entry name,
// against the size and ratio limits.
func (w *walker) within(name string, total uint64) error {
	if total > uint64(w.lim.MaxSize) {
		return entryErr(name, "takes the unpacked size past %s (raise %s in .oopsrc if the build really is that big)", release.HumanSize(w.lim.MaxSize), KeyMaxSize)
	}
	if t := int64(total); t > RatioFloor && t/int64(w.lim.MaxRatio) >= w.packed {
		return entryErr(name, "takes the compression ratio past %d:1 (%s from a %s archive): a zip bomb? (raise %s in .oopsrc if the build really compresses that well)", w.lim.MaxRatio, release.HumanSize(t), release.HumanSize(w.packed), KeyMaxRatio)
	}
	return nil
}

// grow counts n more unpacked bytes against the limits.
func (w *walker) grow(name string, n int64) error {
	w.sum.Size += n
	return w.within(name, uint64(w.sum.Size))
}

// counter counts the bytes of an entry against the limits while they are
// read, so a lying header cannot unpack more than the limits allow.
type counter struct {
	w    *walker
	name string
	r    io.Reader
	err  error
}

func (c *counter) Read(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	n, err := c.r.Read(p)
	if gerr := c.w.grow(c.name, int64(n)); gerr != nil {
		c.err = gerr
		return n, gerr
	}
	return n, err
}

// body reads (and writes, when unpacking) one regular file.
func (w *walker) body(name, p string, perm fs.FileMode, r io.Reader) error {
	c := &counter{w: w, name: name, r: r}
	if w.out == nil {
		_, err := io.Copy(io.Discard, c)
		if c.err != nil {
			return c.err
		}
		if err != nil {
			return entryErr(name, "cannot be read: %v", err)
		}
		return nil
	}
	_, err := w.out.file(p, perm, c)
	if c.err != nil {
		return c.err
	}
	return err
}

// link records a symlink; its target is checked once every entry is known.
func (w *walker) link(name, p, target string) error {
	switch {
	case target == "":
		return entryErr(name, "is a symlink with an empty target")
	case strings.ContainsRune(target, 0):
		return entryErr(name, "is a symlink whose target has a NUL byte")
	case len(target) > maxTarget:
		return entryErr(name, "is a symlink with a target longer than %d bytes", maxTarget)
	case strings.HasPrefix(target, "/"), strings.Contains(target, `\`):
		return entryErr(name, "is a symlink to %q, outside the release folder: only relative links inside it", target)
	case p == "":
		return entryErr(name, "is the release folder itself but not a folder")
	}
	w.targets[p] = target
	w.links = append(w.links, p)
	return nil
}

// The kernel's limits (Linux, macOS and the BSDs): a name in a folder
// is at most maxName bytes, a symlink's target at most maxTarget. An
// archive that passes them would not unpack: it is refused when validated.
const (
	maxName   = 255
	maxTarget = 4095
)

// maxHops bounds link resolution, as the kernel's ELOOP does.
const maxHops = 40

// resolve follows target from the folder dir of the archive as the kernel
// would, through the archive's own symlinks, and returns where it leads;
// false when any step leaves the release folder or there are too many links.
func (w *walker) resolve(dir, target string, hops *int) ([]string, bool) {
	var cur []string
	if dir != "." && dir != "" {
		cur = strings.Split(dir, "/")
	}
	for _, c := range strings.Split(target, "/") {
		switch c {
		case "", ".":
			continue
		case "..":
			if len(cur) == 0 {
				return nil, false
			}
			cur = cur[:len(cur)-1]
			continue
		}
		cur = append(cur, c)
		t, isLink := w.targets[strings.Join(cur, "/")]
		if !isLink {
			continue
		}
		if *hops++; *hops > maxHops {
			return nil, false
		}
		dest, ok := w.resolve(strings.Join(cur[:len(cur)-1], "/"), t, hops)
		if !ok {
			return nil, false
		}
		cur = dest
	}
	return cur, true
}

func (w *walker) zip(r io.ReaderAt, size int64) error {
	zr, err := zip.NewReader(r, size)
	if err != nil && !errors.Is(err, zip.ErrInsecurePath) { // our own rules name the entry
		return archiveErr("the zip does not parse: %v", err)
	}
	// Declared sizes first: a bomb is refused before anything is inflated.
	var declared uint64
	for _, zf := range zr.File {
		declared += min(zf.UncompressedSize64, 1<<62)
		if err := w.within(zf.Name, declared); err != nil {
			return err
		}
	}
	for _, zf := range zr.File {
		p, err := clean(zf.Name)
		if err != nil {
			return err
		}
		mode := zf.Mode()
		switch {
		case mode.IsDir() || strings.HasSuffix(zf.Name, "/"):
			if err := w.add(zf.Name, p, dirKind); err != nil {
				return err
			}
			if w.out != nil && p != "" {
				if err := w.out.dir(p); err != nil {
					return fmt.Errorf("create folder %s: %w", p, err)
				}
			}
		case mode&fs.ModeSymlink != 0:
			if err := w.add(zf.Name, p, linkKind); err != nil {
				return err
			}
			rc, err := zf.Open()
			if err != nil {
				return entryErr(zf.Name, "cannot be read: %v", err)
			}
			target, err := io.ReadAll(io.LimitReader(rc, maxTarget+1))
			rc.Close()
			if err != nil {
				return entryErr(zf.Name, "cannot be read: %v", err)
			}
			if err := w.link(zf.Name, p, string(target)); err != nil {
				return err
			}
		case mode.IsRegular():
			if err := w.add(zf.Name, p, fileKind); err != nil {
				return err
			}
			w.sum.Files++
			rc, err := zf.Open()
			if err != nil {
				return entryErr(zf.Name, "cannot be read: %v", err)
			}
			err = w.body(zf.Name, p, zipPerm(zf), rc)
			rc.Close()
			if err != nil {
				return err
			}
		default:
			return entryErr(zf.Name, "is a %s: only files, folders and symlinks", typeName(mode))
		}
	}
	return nil
}

// zipPerm keeps the executable bit: zips made on Windows carry no unix
// mode, and then everything is 0644.
func zipPerm(zf *zip.File) fs.FileMode {
	p := zf.Mode().Perm()
	if p == 0 {
		return 0o644
	}
	return p
}

func typeName(m fs.FileMode) string {
	switch {
	case m&fs.ModeDevice != 0 && m&fs.ModeCharDevice != 0:
		return "character device"
	case m&fs.ModeDevice != 0:
		return "block device"
	case m&fs.ModeNamedPipe != 0:
		return "named pipe"
	case m&fs.ModeSocket != 0:
		return "socket"
	}
	return "special file"
}

func (w *walker) tarGz(r io.Reader) error {
	gz, err := gzip.NewReader(bufio.NewReader(r))
	if err != nil {
		return archiveErr("the gzip stream does not parse: %v", err)
	}
	defer gz.Close()
	tr := tar.NewReader(gz)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil && !errors.Is(err, tar.ErrInsecurePath) { // our own rules name the entry
			return archiveErr("the tar stream does not parse: %v", err)
		}
		if h.Typeflag == tar.TypeXGlobalHeader {
			continue // PAX metadata for what follows, nothing to unpack
		}
		p, err := clean(h.Name)
		if err != nil {
			return err
		}
		switch h.Typeflag {
		case tar.TypeDir:
			if err := w.add(h.Name, p, dirKind); err != nil {
				return err
			}
			if w.out != nil && p != "" {
				if err := w.out.dir(p); err != nil {
					return fmt.Errorf("create folder %s: %w", p, err)
				}
			}
		case tar.TypeReg: // the reader turns the old TypeRegA into TypeReg
			if err := w.add(h.Name, p, fileKind); err != nil {
				return err
			}
			w.sum.Files++
			// The declared size first: a bomb is refused before it is inflated.
			if err := w.within(h.Name, uint64(w.sum.Size)+uint64(max(h.Size, 0))); err != nil {
				return err
			}
			if err := w.body(h.Name, p, fs.FileMode(h.Mode).Perm(), tr); err != nil {
				return err
			}
		case tar.TypeSymlink:
			if err := w.add(h.Name, p, linkKind); err != nil {
				return err
			}
			if err := w.link(h.Name, p, h.Linkname); err != nil {
				return err
			}
		case tar.TypeLink:
			return entryErr(h.Name, "is a hard link (to %q): only files, folders and symlinks", h.Linkname)
		case tar.TypeChar:
			return entryErr(h.Name, "is a character device: only files, folders and symlinks")
		case tar.TypeBlock:
			return entryErr(h.Name, "is a block device: only files, folders and symlinks")
		case tar.TypeFifo:
			return entryErr(h.Name, "is a named pipe: only files, folders and symlinks")
		default:
			return entryErr(h.Name, "has tar type %q: only files, folders and symlinks", h.Typeflag)
		}
	}
	// The end of the tar is not the end of the gzip stream: read it to its
	// trailer, so a truncated or corrupted archive is caught.
	if _, err := io.Copy(io.Discard, io.LimitReader(gz, 1<<20)); err != nil {
		return archiveErr("the gzip stream does not parse to its end: %v", err)
	}
	var one [1]byte
	if n, _ := gz.Read(one[:]); n > 0 {
		return archiveErr("has more than 1 MiB of data after the end of the tar stream")
	}
	return nil
}
