package local

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/oops-deploy/oops/release"
	"github.com/oops-deploy/oops/target"
)

// Files in the state directory. The proxy writes live.json (and only the
// proxy, while it runs); deploys write <color>.json. Splitting them means the
// two writers never race on one file.
const (
	liveFile   = "live.json"
	lockFile   = "proxy.lock"
	socketFile = "proxy.sock"
	releaseDir = "releases"
)

// liveState is the persisted live color.
type liveState struct {
	Live  release.Color `json:"live"`
	Since time.Time     `json:"since"`
	// Generation is the highest lock generation the switch was made under.
	Generation int64 `json:"generation,omitempty"`
}

// Process states recorded in a color file.
const (
	procRunning = "running"
	procStopped = "stopped"
	procFailed  = "failed"
)

// colorState is what a color runs, as recorded by the deploy that started it.
type colorState struct {
	Color      release.Color `json:"color"`
	Port       int           `json:"port"`
	Commit     string        `json:"commit,omitempty"`
	Status     string        `json:"status"`
	PID        int           `json:"pid,omitempty"`
	ProcStart  string        `json:"proc_start,omitempty"`
	ReleaseDir string        `json:"release_dir,omitempty"`
	Log        string        `json:"log,omitempty"`
	Command    []string      `json:"command,omitempty"`
	Env        []string      `json:"env,omitempty"`
	Started    time.Time     `json:"started,omitzero"`
	Error      string        `json:"error,omitempty"`
	// Generation is the lock generation of the command that wrote this
	// record: a command holding an older one may not overwrite it.
	Generation int64 `json:"generation,omitempty"`
	// Installing is set from the start of a deploy's process until its
	// health check passed: a deploy killed in between leaves it set.
	Installing bool `json:"installing,omitempty"`
}

// writeJSONAtomic writes v to path through a temporary file and a rename, so
// a reader (or a crash) never sees half a file.
func writeJSONAtomic(path string, v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer os.Remove(tmp.Name()) // no-op once renamed
	if _, err := tmp.Write(append(data, '\n')); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	// Make the rename itself durable; best effort where directories can't be synced.
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}

// readJSON reads path into v; ok is false when the file does not exist.
func readJSON(path string, v any) (ok bool, err error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("read %s: %w", path, err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		return false, fmt.Errorf("%w: %s is corrupt (%v); fix or delete it", target.ErrInconsistent, path, err)
	}
	return true, nil
}

// readLive reads the persisted live color; blue when nothing was ever
// switched, so the first deploy goes to green.
func readLive(dir string) (liveState, error) {
	var ls liveState
	ok, err := readJSON(filepath.Join(dir, liveFile), &ls)
	if err != nil {
		return liveState{}, err
	}
	if !ok {
		return liveState{Live: release.Blue}, nil
	}
	if !ls.Live.Valid() {
		return liveState{}, fmt.Errorf("%w: %s: live color %q is not blue or green; fix or delete it",
			target.ErrInconsistent, filepath.Join(dir, liveFile), ls.Live)
	}
	return ls, nil
}

func writeLive(dir string, ls liveState) error {
	return writeJSONAtomic(filepath.Join(dir, liveFile), ls)
}

// What a color runs is kept in one file per lock generation,
// <color>.<generation>.json, and the highest generation is the record. A
// holder that lost the lock can only write under its own, lower,
// generation, which nobody reads: fencing without a file lock, so a writer
// stopped half-way (SIGSTOP) blocks nobody. <color>.json is the name older
// versions used; it counts as generation 0 (or the one it records).

// colorFiles lists color c's record files in dir, highest generation first.
func colorFiles(dir string, c release.Color) ([]colorFileGen, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read state directory: %w", err)
	}
	var out []colorFileGen
	for _, e := range entries {
		gen, ok := colorFileGeneration(e.Name(), c)
		if ok && e.Type().IsRegular() {
			out = append(out, colorFileGen{path: filepath.Join(dir, e.Name()), gen: gen})
		}
	}
	slices.SortFunc(out, func(a, b colorFileGen) int { return cmp.Compare(b.gen, a.gen) })
	return out, nil
}

type colorFileGen struct {
	path string
	gen  int64
}

// colorFileGeneration parses "<c>.<gen>.json" (and the older "<c>.json").
func colorFileGeneration(name string, c release.Color) (int64, bool) {
	rest, ok := strings.CutPrefix(name, string(c)+".")
	if !ok {
		return 0, false
	}
	if rest == "json" {
		return 0, true
	}
	num, ok := strings.CutSuffix(rest, ".json")
	if !ok {
		return 0, false
	}
	gen, err := strconv.ParseInt(num, 10, 64)
	if err != nil || gen < 0 {
		return 0, false
	}
	return gen, true
}

func colorFileName(c release.Color, gen int64) string {
	return fmt.Sprintf("%s.%d.json", c, gen)
}

// readColor reads what color c runs; a zero state (status stopped) when
// nothing was ever deployed there.
func readColor(dir string, c release.Color, port int) (colorState, error) {
	cs := colorState{Color: c, Port: port, Status: procStopped}
	files, err := colorFiles(dir, c)
	if err != nil {
		return colorState{}, err
	}
	if len(files) > 0 {
		if _, err := readJSON(files[0].path, &cs); err != nil {
			return colorState{}, err
		}
		cs.Generation = max(cs.Generation, files[0].gen)
	}
	cs.Color, cs.Port = c, port
	return cs, nil
}

// writeColor writes cs as the record of generation cs.Generation and
// removes the records of lower generations.
func writeColor(dir string, cs colorState) error {
	if err := writeJSONAtomic(filepath.Join(dir, colorFileName(cs.Color, cs.Generation)), cs); err != nil {
		return err
	}
	files, _ := colorFiles(dir, cs.Color)
	for _, f := range files {
		if f.gen < cs.Generation || (f.gen == cs.Generation && filepath.Base(f.path) != colorFileName(cs.Color, cs.Generation)) {
			_ = os.Remove(f.path)
		}
	}
	return nil
}

// saveColor writes what a color runs for the command ctx belongs to. It
// is fenced twice: the lease (a holder that lost the lock writes nothing),
// and the generation: the record is written under the command's lock
// generation, so a holder that lost the lock between its lease check and
// its write leaves a record of an older generation, which is never read.
// Commands without a lock (oops proxy restarting an app) write under the
// current generation.
func (t *Target) saveColor(ctx context.Context, cs colorState) error {
	if err := target.CheckFence(ctx); err != nil {
		return err
	}
	dir := t.opts.StateDir
	files, err := colorFiles(dir, cs.Color)
	if err != nil {
		return err
	}
	var cur int64
	if len(files) > 0 {
		cur = files[0].gen
	}
	gen := target.FenceGeneration(ctx)
	if gen != 0 && gen < cur {
		return fmt.Errorf("%w: %s was written under lock generation %d since; this command holds %d",
			target.ErrFenced, files[0].path, cur, gen)
	}
	cs.Generation = max(gen, cur)
	return writeColor(dir, cs)
}

// ensureDir creates the state directory, private to this user: the admin
// socket and the pids in it are nobody else's business.
func ensureDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create state directory: %w", err)
	}
	return nil
}
