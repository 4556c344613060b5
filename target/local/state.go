package local

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
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

func colorFile(c release.Color) string { return string(c) + ".json" }

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

// readColor reads what color c runs; a zero state (status stopped) when
// nothing was ever deployed there.
func readColor(dir string, c release.Color, port int) (colorState, error) {
	cs := colorState{Color: c, Port: port, Status: procStopped}
	if _, err := readJSON(filepath.Join(dir, colorFile(c)), &cs); err != nil {
		return colorState{}, err
	}
	cs.Color, cs.Port = c, port
	return cs, nil
}

func writeColor(dir string, cs colorState) error {
	return writeJSONAtomic(filepath.Join(dir, colorFile(cs.Color)), cs)
}

// saveColor writes what a color runs for the command ctx belongs to. It
// is fenced twice: the lease (a holder that lost the lock writes nothing),
// and the generation of the record on disk, compared and written under a
// file lock, so that a holder that lost the lock between its lease check
// and its write still cannot overwrite what a newer holder recorded.
func (t *Target) saveColor(ctx context.Context, cs colorState) error {
	if err := target.CheckFence(ctx); err != nil {
		return err
	}
	dir := t.opts.StateDir
	lf, err := lockWait(ctx, filepath.Join(dir, "."+colorFile(cs.Color)+".lock"))
	if err != nil {
		return fmt.Errorf("lock %s state: %w", cs.Color, err)
	}
	defer lf.Close()
	var cur colorState
	if _, err := readJSON(filepath.Join(dir, colorFile(cs.Color)), &cur); err != nil {
		// A corrupt record is replaced: it fences nothing.
		cur = colorState{}
	}
	gen := target.FenceGeneration(ctx)
	if gen != 0 && gen < cur.Generation {
		return fmt.Errorf("%w: %s was written under lock generation %d since; this command holds %d",
			target.ErrFenced, filepath.Join(dir, colorFile(cs.Color)), cur.Generation, gen)
	}
	cs.Generation = max(gen, cur.Generation)
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

// lockWait takes the file lock at path, waiting while another oops holds
// it. It is held for one read and one write, so a longer wait means its
// holder was stopped (SIGSTOP, Ctrl-Z) inside that window: rather than
// hang, say which process it is. The holder writes its pid into the file.
func lockWait(ctx context.Context, path string) (*os.File, error) {
	const maxWait = 5 * time.Second
	deadline := time.Now().Add(maxWait)
	for {
		f, held, err := tryLock(path)
		if err != nil {
			return nil, err
		}
		if held {
			_ = f.Truncate(0)
			_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
			return f, nil
		}
		if time.Now().After(deadline) {
			pid, _ := os.ReadFile(path)
			return nil, fmt.Errorf("%w: oops process %s has held %s for over %s without finishing a write: is it stopped? resume it (kill -CONT %s) or end it",
				target.ErrInconsistent, trimSpace(pid), path, maxWait, trimSpace(pid))
		}
		select {
		case <-ctx.Done():
			return nil, context.Cause(ctx)
		case <-time.After(10 * time.Millisecond):
		}
	}
}
