package local

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"

	"github.com/oops-deploy/oops/release"
	"github.com/oops-deploy/oops/target"
)

// verifier hashes and counts an artifact while it is fetched, so that its
// bytes are checked against the release metadata (size and SHA-256
// recorded at publish) before anything is unpacked or stopped. Past the
// recorded size it stops handing bytes on (an artifact grown in the store
// cannot fill the disk); check then hashes the rest, to name it.
type verifier struct {
	rel release.Release
	r   io.Reader
	h   hash.Hash
	n   int64
}

// errOversize stops the copy of an artifact larger than published.
var errOversize = errors.New("larger than published")

// verified reports whether rel can be verified: only releases published by
// oops carry a size and SHA-256; bare artifacts (uploaded by other CI) do
// not, and are deployed unverified.
func verified(rel release.Release) bool { return rel.SHA256 != "" && !rel.Bare }

func newVerifier(rel release.Release, r io.Reader) *verifier {
	return &verifier{rel: rel, r: r, h: sha256.New()}
}

func (v *verifier) Read(p []byte) (int, error) {
	n, err := v.r.Read(p)
	v.h.Write(p[:n])
	v.n += int64(n)
	if v.n > v.rel.Size {
		return 0, errOversize
	}
	return n, err
}

// check compares what was read with the metadata: nil when the size and
// SHA-256 match, else an error wrapping target.ErrIntegrity that names
// both hashes. copyErr is what the copy through v returned.
func (v *verifier) check(copyErr error) error {
	if errors.Is(copyErr, errOversize) {
		n, err := io.Copy(v.h, v.r)
		if err != nil {
			return err
		}
		v.n += n
	} else if copyErr != nil {
		return copyErr
	}
	got := hex.EncodeToString(v.h.Sum(nil))
	if v.n != v.rel.Size || got != v.rel.SHA256 {
		return fmt.Errorf("%w: %s was changed in the store after publish: it has %d bytes with sha256 %s, but %d bytes with sha256 %s were published",
			target.ErrIntegrity, v.rel.Key, v.n, got, v.rel.Size, v.rel.SHA256)
	}
	return nil
}
