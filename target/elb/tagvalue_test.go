package elb_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/oops-deploy/oops/target"
	"github.com/oops-deploy/oops/target/elb"
	"github.com/oops-deploy/oops/target/elb/elbtest"
)

// An ELB tag value holds only letters, digits, spaces and _.:/=+-@: a
// certificate whose name has a comma cannot be recorded in oops:listeners.
// AWS would refuse the AddTags (moto accepts it); oops checks before any
// change and says what to do.
func TestListenerRecordWithForbiddenCharactersIsRefusedUpFront(t *testing.T) {
	t.Parallel()
	cert := "arn:aws:iam::123456789012:server-certificate/web,2024"
	e := setup(t, elbtest.Fixture{Listeners: []elbtest.Listener{
		{Port: 80, Protocol: "HTTP", InstanceProtocol: "HTTP"},
		{Port: 443, Protocol: "HTTPS", InstanceProtocol: "HTTP", Cert: cert},
	}}, elb.Options{})
	_, err := switchTo(e, target.SwitchOptions{})
	if !errors.Is(err, target.ErrMisconfigured) {
		t.Fatalf("Switch = %v, want a refusal (misconfigured)", err)
	}
	for _, w := range []string{`","`, cert, "letters, digits, spaces and _.:/=+-@"} {
		if !strings.Contains(err.Error()+"\n"+hintOf(err), w) {
			t.Errorf("refusal does not say %q:\n%v\n%s", w, err, hintOf(err))
		}
	}
	if !strings.Contains(hintOf(err), "aws iam update-server-certificate") {
		t.Errorf("no fix given: %q", hintOf(err))
	}
	if m := e.mutating(); len(m) != 0 {
		t.Errorf("changes made before the refusal: %v", m)
	}
	if s := e.snap(); !strings.Contains(strings.Join(s.Listeners, " "), "HTTPS:443->HTTPS:8080") {
		t.Errorf("listeners changed: %s", s)
	}
}
