package local

import (
	"os"

	"github.com/oops-deploy/oops/release/archive"
)

// unpack extracts the archive in file (zip or tar.gz, recognised by
// content, not name) into dir, an existing empty folder, with the rules
// and limits oops publish validates with (package archive): nothing can
// land outside dir, and a refused archive leaves dir empty.
func unpack(file, dir string, opts archive.Options) error {
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	_, err = archive.Unpack(f, fi.Size(), dir, opts)
	return err
}
