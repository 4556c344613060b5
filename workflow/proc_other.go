//go:build !unix

package workflow

// processAlive is unknown off Unix: assume alive, so locks wait for their TTL.
func processAlive(int) bool { return true }

// pidNamespace is unknown off Unix.
func pidNamespace() string { return "" }
