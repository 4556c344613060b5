package store

import (
	"errors"
	"fmt"
)

// ErrCorrupt: an object oops keeps (index, release metadata, marks, an
// event, the lock, a hook marker) exists but cannot be decoded.
var ErrCorrupt = errors.New("corrupt")

// CorruptError names the object that cannot be read and why. Readers of
// bookkeeping read around such objects and warn once; `oops fsck` lists
// them and `oops fsck --repair` rebuilds what can be derived.
type CorruptError struct {
	Key string
	Err error
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("%s is unreadable: %v", e.Key, e.Err)
}

// Unwrap makes errors.Is(err, ErrCorrupt) true and keeps the cause.
func (e *CorruptError) Unwrap() []error { return []error{ErrCorrupt, e.Err} }
