package elb

import (
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"unicode"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/elasticloadbalancing/types"
)

// listener is one ELB listener. In a recorded definition (the
// oops:listeners tag) InstancePort is 0: the port is the color's.
type listener struct {
	Port             int32 // load-balancer port
	Protocol         string
	InstanceProtocol string
	InstancePort     int32
	Cert             string
	Policies         []string
}

func fromSDK(d types.ListenerDescription) listener {
	l := listener{Policies: slices.Clone(d.PolicyNames)}
	if d.Listener != nil {
		l.Port = d.Listener.LoadBalancerPort
		l.Protocol = strings.ToUpper(aws.ToString(d.Listener.Protocol))
		l.InstanceProtocol = strings.ToUpper(aws.ToString(d.Listener.InstanceProtocol))
		l.InstancePort = aws.ToInt32(d.Listener.InstancePort)
		l.Cert = aws.ToString(d.Listener.SSLCertificateId)
	}
	if l.InstanceProtocol == "" {
		l.InstanceProtocol = l.Protocol
	}
	sort.Strings(l.Policies)
	return l
}

// sdk is the listener to create, pointing at port.
func (l listener) sdk(port int32) types.Listener {
	out := types.Listener{
		LoadBalancerPort: l.Port,
		Protocol:         aws.String(l.Protocol),
		InstanceProtocol: aws.String(l.InstanceProtocol),
		InstancePort:     aws.Int32(port),
	}
	if l.Cert != "" {
		out.SSLCertificateId = aws.String(l.Cert)
	}
	return out
}

// def is the listener without its instance port: what oops records and
// recreates on the other color's port.
func (l listener) def() listener {
	l.InstancePort = 0
	l.Policies = slices.Clone(l.Policies)
	return l
}

// sameDef reports whether l and m are the same listener apart from the
// instance port and policies.
func (l listener) sameDef(m listener) bool {
	return l.Port == m.Port && l.Protocol == m.Protocol && l.InstanceProtocol == m.InstanceProtocol && l.Cert == m.Cert
}

// String is how plans and status show a listener.
func (l listener) String() string {
	s := fmt.Sprintf("%s:%d -> %s:%d", l.Protocol, l.Port, l.InstanceProtocol, l.InstancePort)
	if l.Cert != "" {
		s += " cert " + l.Cert
	}
	if len(l.Policies) > 0 {
		s += " policies " + strings.Join(l.Policies, ",")
	}
	return s
}

// cli renders l pointing at port as the --listeners argument of
// aws elb create-load-balancer-listeners, for exact plans.
func (l listener) cli(port int32) string {
	s := fmt.Sprintf("Protocol=%s,LoadBalancerPort=%d,InstanceProtocol=%s,InstancePort=%d", l.Protocol, l.Port, l.InstanceProtocol, port)
	if l.Cert != "" {
		s += ",SSLCertificateId=" + l.Cert
	}
	return s
}

// Tag keys oops owns on the ELB, beside the original blue and green.
const (
	tagBlue      = "blue"
	tagGreen     = "green"
	tagListeners = "oops:listeners"
	tagIntent    = "oops:switch"
	// maxTagValue is the longest tag value a Classic ELB accepts.
	maxTagValue = 256
)

func commitTag(c string) string { return "oops:" + c + "-commit" }

// listenersChunkKey names the n-th (0-based) tag of the listener record:
// oops:listeners, oops:listeners:2, oops:listeners:3, ...
func listenersChunkKey(n int) string {
	if n == 0 {
		return tagListeners
	}
	return fmt.Sprintf("%s:%d", tagListeners, n+1)
}

// encodeRecord writes listener definitions compactly in the characters
// ELB tag values allow (letters, digits, space and _.:/=+-@): tokens
// separated by spaces, "L<port>:<protocol>:<instance protocol>" opening a
// listener, "C<certificate ARN>" and "P<policy>" adding to it. Values
// longer than a tag holds are split at token boundaries.
func encodeRecord(defs []listener) ([]string, error) {
	var tokens []string
	for _, l := range sortedByPort(defs) {
		tokens = append(tokens, fmt.Sprintf("L%d:%s:%s", l.Port, l.Protocol, l.InstanceProtocol))
		if l.Cert != "" {
			tokens = append(tokens, "C"+l.Cert)
		}
		for _, p := range l.Policies {
			tokens = append(tokens, "P"+p)
		}
	}
	var chunks []string
	cur := ""
	for _, t := range tokens {
		if r, ok := badTagRune(t[1:]); ok {
			return nil, &recordError{what: t[1:], bad: r}
		}
		if strings.ContainsAny(t, " \t\n") || len(t) > maxTagValue {
			return nil, fmt.Errorf("cannot record listener detail %q in a tag (spaces or longer than %d characters)", t, maxTagValue)
		}
		switch {
		case cur == "":
			cur = t
		case len(cur)+1+len(t) <= maxTagValue:
			cur += " " + t
		default:
			chunks = append(chunks, cur)
			cur = t
		}
	}
	if cur != "" {
		chunks = append(chunks, cur)
	}
	return chunks, nil
}

// badTagRune returns the first rune of s that an ELB tag value cannot hold
// (it allows letters, separators, digits and _.:/=+-@).
func badTagRune(s string) (rune, bool) {
	for _, r := range s {
		if !unicode.IsLetter(r) && !unicode.Is(unicode.Z, r) && !unicode.IsNumber(r) && !strings.ContainsRune("_.:/=+-@", r) {
			return r, true
		}
	}
	return 0, false
}

// recordError is a listener detail (certificate ARN, policy name) that no
// tag value can hold: the record an interrupted switch is finished from
// cannot be written, so the switch is refused before any change.
type recordError struct {
	what string
	bad  rune
}

func (e *recordError) Error() string {
	return fmt.Sprintf("cannot record %s in the tag %s: it contains %q, and ELB tag values hold only letters, digits, spaces and _.:/=+-@", e.what, tagListeners, string(e.bad))
}

func (e *recordError) fix() string {
	return "without that record an interrupted switch could not be finished, so oops does not switch: give the certificate (or policy) a name without it, e.g. `aws iam update-server-certificate --server-certificate-name OLD --new-server-certificate-name NEW` or an ACM certificate, point the listener at it (`aws elb set-load-balancer-listener-ssl-certificate`), then run the command again"
}

// knownProtocol reports whether p is a Classic ELB listener protocol.
func knownProtocol(p string) bool {
	switch p {
	case "HTTP", "HTTPS", "TCP", "SSL":
		return true
	}
	return false
}

// decodeRecord reads what encodeRecord wrote (chunks joined by a space).
func decodeRecord(s string) ([]listener, error) {
	var out []listener
	for _, t := range strings.Fields(s) {
		if len(t) < 2 {
			return nil, fmt.Errorf("bad token %q", t)
		}
		v := t[1:]
		switch t[0] {
		case 'L':
			parts := strings.Split(v, ":")
			if len(parts) != 3 {
				return nil, fmt.Errorf("bad listener %q (want L<port>:<protocol>:<instance protocol>)", t)
			}
			// The tag can be written by anyone who may tag the ELB, and a
			// switch re-creates listeners from it: only what an ELB can
			// have (found by FuzzDecodeRecord).
			port, err := strconv.ParseInt(parts[0], 10, 32)
			if err != nil || port <= 0 || port > 65535 {
				return nil, fmt.Errorf("bad listener port in %q (want 1 to 65535)", t)
			}
			if !knownProtocol(parts[1]) || !knownProtocol(parts[2]) {
				return nil, fmt.Errorf("bad listener protocol in %q (want HTTP, HTTPS, TCP or SSL)", t)
			}
			for _, l := range out {
				if l.Port == int32(port) {
					return nil, fmt.Errorf("listener port %d recorded twice", port)
				}
			}
			out = append(out, listener{Port: int32(port), Protocol: parts[1], InstanceProtocol: parts[2]})
		case 'C', 'P':
			if len(out) == 0 {
				return nil, fmt.Errorf("%q comes before any listener", t)
			}
			l := &out[len(out)-1]
			if t[0] == 'C' {
				if l.Cert != "" {
					return nil, fmt.Errorf("a second certificate %q for listener %d", t, l.Port)
				}
				l.Cert = v
			} else {
				l.Policies = append(l.Policies, v)
			}
		default:
			return nil, fmt.Errorf("bad token %q", t)
		}
	}
	for i := range out {
		sort.Strings(out[i].Policies)
	}
	return out, nil
}

func sortedByPort(ls []listener) []listener {
	out := slices.Clone(ls)
	sort.Slice(out, func(i, j int) bool { return out[i].Port < out[j].Port })
	return out
}

// sameDefs reports whether two definition lists record the same listeners
// with the same policies (order does not matter).
func sameDefs(a, b []listener) bool {
	if len(a) != len(b) {
		return false
	}
	a, b = sortedByPort(a), sortedByPort(b)
	for i := range a {
		if !a[i].sameDef(b[i]) || !slices.Equal(a[i].Policies, b[i].Policies) {
			return false
		}
	}
	return true
}

func ports(ls []listener) string {
	ps := make([]string, len(ls))
	for i, l := range sortedByPort(ls) {
		ps[i] = strconv.Itoa(int(l.Port))
	}
	return strings.Join(ps, ", ")
}

// healthCheck is the ELB health check target split into its parts:
// "HTTP:8080/healthcheck" is {HTTP, 8080, /healthcheck}.
type healthCheck struct {
	Protocol string
	Port     int32
	Path     string
	// Timings are kept as they are when the port moves.
	Interval, Timeout, Healthy, Unhealthy int32
}

func parseHealthCheck(hc *types.HealthCheck) (*healthCheck, error) {
	if hc == nil || aws.ToString(hc.Target) == "" {
		return nil, nil
	}
	target := aws.ToString(hc.Target)
	proto, rest, ok := strings.Cut(target, ":")
	if !ok {
		return nil, fmt.Errorf("health check target %q is not PROTOCOL:PORT[/PATH]", target)
	}
	portStr, path := rest, ""
	if i := strings.IndexByte(rest, '/'); i >= 0 {
		portStr, path = rest[:i], rest[i:]
	}
	port, err := strconv.ParseInt(portStr, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("health check target %q has no port number", target)
	}
	return &healthCheck{
		Protocol: strings.ToUpper(proto), Port: int32(port), Path: path,
		Interval: aws.ToInt32(hc.Interval), Timeout: aws.ToInt32(hc.Timeout),
		Healthy: aws.ToInt32(hc.HealthyThreshold), Unhealthy: aws.ToInt32(hc.UnhealthyThreshold),
	}, nil
}

// target is the health check target with port p.
func (h *healthCheck) target(p int32) string {
	return fmt.Sprintf("%s:%d%s", h.Protocol, p, h.Path)
}

func (h *healthCheck) sdk(p int32) *types.HealthCheck {
	return &types.HealthCheck{
		Target:             aws.String(h.target(p)),
		Interval:           aws.Int32(h.Interval),
		Timeout:            aws.Int32(h.Timeout),
		HealthyThreshold:   aws.Int32(h.Healthy),
		UnhealthyThreshold: aws.Int32(h.Unhealthy),
	}
}

// cli renders the check on port p as aws elb configure-health-check's
// --health-check argument.
func (h *healthCheck) cli(p int32) string {
	return fmt.Sprintf("Target=%s,Interval=%d,Timeout=%d,UnhealthyThreshold=%d,HealthyThreshold=%d",
		h.target(p), h.Interval, h.Timeout, h.Unhealthy, h.Healthy)
}
