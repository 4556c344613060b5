package dir_test

import (
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/oops-deploy/oops/store"
	"github.com/oops-deploy/oops/store/dir"
	"github.com/oops-deploy/oops/store/storetest"
)

func TestContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return dir.New(t.TempDir()) })
}

// TestLayout: objects are plain files at <root>/<key> (a release is a zip
// you can copy out), and nothing is created before the first write.
func TestLayout(t *testing.T) {
	ctx := context.Background()
	root := filepath.Join(t.TempDir(), "releases")
	s := dir.New(root)
	if _, err := s.Stat(ctx, "app/app-1.zip"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Stat on a store never written: %v, want ErrNotFound", err)
	}
	if _, err := os.Stat(root); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("reading created the store folder (%v)", err)
	}
	if _, err := s.Create(ctx, "app/app-1.zip", strings.NewReader("zip"), 3, map[string]string{"sha256": "x"}); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(root, "app", "app-1.zip"))
	if err != nil || string(b) != "zip" {
		t.Fatalf("object file = %q, %v; want the plain bytes at <root>/<key>", b, err)
	}
	if _, err := s.Create(ctx, dir.Internal+"/x", strings.NewReader("x"), 1, nil); err == nil {
		t.Errorf("Create under %s succeeded; it is reserved", dir.Internal)
	}
	var keys []string
	_ = s.List(ctx, "", store.ListOptions{}, func(o store.Object) error { keys = append(keys, o.Key); return nil })
	if strings.Join(keys, ",") != "app/app-1.zip" {
		t.Errorf("List = %q; bookkeeping files must not be listed", keys)
	}
}

// TestForeignFiles: a zip copied in by another tool lists and reads like
// any object, without metadata; metadata of a version that was replaced
// behind oops's back is not attributed to the new file.
func TestForeignFiles(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	s := dir.New(root)
	if _, err := s.Create(ctx, "app/a.zip", strings.NewReader("mine"), 4, map[string]string{"sha256": "mine"}); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(root, "app", "a.zip")
	if err := os.WriteFile(p+".new", []byte("theirs!"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(p+".new", p); err != nil {
		t.Fatal(err)
	}
	o, err := s.Stat(ctx, "app/a.zip")
	if err != nil {
		t.Fatal(err)
	}
	if o.Size != 7 || o.Meta["sha256"] != "" {
		t.Errorf("after a foreign overwrite Stat = %+v; want size 7 and no stale metadata", o)
	}
}

func TestObjectFolderConflict(t *testing.T) {
	ctx := context.Background()
	s := dir.New(t.TempDir())
	if _, err := s.Create(ctx, "a", strings.NewReader("x"), 1, nil); err != nil {
		t.Fatal(err)
	}
	_, err := s.Create(ctx, "a/b", strings.NewReader("x"), 1, nil)
	if err == nil || !strings.Contains(err.Error(), "both an object and a folder") {
		t.Errorf("Create(a/b) next to object a: err = %v, want an explanation", err)
	}
}

// TestCrossProcessCAS runs compare-and-swap increments from several
// processes at once: the flock must make Replace atomic between processes,
// not just goroutines.
func TestCrossProcessCAS(t *testing.T) {
	if os.Getenv("OOPS_DIR_HELPER") != "" {
		t.Skip("helper process")
	}
	root := t.TempDir()
	s := dir.New(root)
	if _, err := s.Create(context.Background(), "counter", strings.NewReader("0"), 1, nil); err != nil {
		t.Fatal(err)
	}
	const procs, each = 4, 15
	var cmds []*exec.Cmd
	for range procs {
		c := exec.Command(os.Args[0], "-test.run=^TestHelperIncrement$")
		c.Env = append(os.Environ(), "OOPS_DIR_HELPER="+root, "OOPS_DIR_EACH="+strconv.Itoa(each))
		c.Stderr = os.Stderr
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		cmds = append(cmds, c)
	}
	for _, c := range cmds {
		if err := c.Wait(); err != nil {
			t.Fatalf("helper: %v", err)
		}
	}
	rc, _, err := s.Get(context.Background(), "counter")
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, _ := io.ReadAll(rc)
	if string(b) != strconv.Itoa(procs*each) {
		t.Errorf("counter = %s after %d increments from %d processes: updates lost", b, procs*each, procs)
	}
}

func TestHelperIncrement(t *testing.T) {
	root := os.Getenv("OOPS_DIR_HELPER")
	if root == "" {
		t.Skip("only run as a helper process")
	}
	each, _ := strconv.Atoi(os.Getenv("OOPS_DIR_EACH"))
	s := dir.New(root)
	ctx := context.Background()
	for range each {
		for {
			rc, o, err := s.Get(ctx, "counter")
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(rc)
			rc.Close()
			n, _ := strconv.Atoi(string(b))
			_, err = s.Replace(ctx, "counter", []byte(strconv.Itoa(n+1)), o.ETag)
			if err == nil {
				break
			}
			if !errors.Is(err, store.ErrPrecondition) {
				t.Fatal(err)
			}
		}
	}
}
