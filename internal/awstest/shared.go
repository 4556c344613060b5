package awstest

import "testing"

// Shared is one moto for all the tests of a package, started by its
// TestMain:
//
//	var moto awstest.Shared
//
//	func TestMain(m *testing.M) { os.Exit(moto.Main(m)) }
type Shared struct {
	URL string // empty when moto did not start
	Err error  // why moto did not start
}

// Main starts moto, runs the tests and stops moto; it returns the exit
// code for os.Exit. Without moto the tests still run: Need skips them.
func (s *Shared) Main(m *testing.M) int {
	srv, err := StartServer()
	if err != nil {
		s.Err = err
		return m.Run()
	}
	defer srv.Stop()
	s.URL = srv.URL
	return m.Run()
}

// Need skips (or, under CI, fails) tb when moto did not start.
func (s *Shared) Need(tb testing.TB) {
	tb.Helper()
	if s.Err != nil {
		Unavailable(tb, s.Err)
	}
}
