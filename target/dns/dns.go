// Package dns switches traffic with Route 53 weighted records: the colors
// are two records of one name and type with SetIdentifier blue and green,
// and a switch is one ChangeResourceRecordSets that sets both weights
// (atomic: Route 53 applies a change batch whole or not at all), followed
// by GetChange until the change is INSYNC on every Route 53 name server.
// Clients that resolved the name before may still reach the old color for
// up to the records' TTL; State says when that has passed.
package dns

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/route53"
	"github.com/aws/aws-sdk-go-v2/service/route53/types"
	"github.com/aws/smithy-go"

	"github.com/oops-deploy/oops/internal/health"
	"github.com/oops-deploy/oops/release"
	"github.com/oops-deploy/oops/target"
)

// MetaPrefix names oops's TXT record: _oops.<dns-name> holds the commit
// each color runs, the canary base and the last switch (see meta).
const MetaPrefix = "_oops."

// metaTTL is the TXT record's TTL; nothing resolves it but oops, through
// the API, so it hardly matters.
const metaTTL = 300

// API is the part of the Route 53 client oops uses.
type API interface {
	ListHostedZonesByName(context.Context, *route53.ListHostedZonesByNameInput, ...func(*route53.Options)) (*route53.ListHostedZonesByNameOutput, error)
	ListResourceRecordSets(context.Context, *route53.ListResourceRecordSetsInput, ...func(*route53.Options)) (*route53.ListResourceRecordSetsOutput, error)
	ChangeResourceRecordSets(context.Context, *route53.ChangeResourceRecordSetsInput, ...func(*route53.Options)) (*route53.ChangeResourceRecordSetsOutput, error)
	GetChange(context.Context, *route53.GetChangeInput, ...func(*route53.Options)) (*route53.GetChangeOutput, error)
	GetHealthCheckStatus(context.Context, *route53.GetHealthCheckStatusInput, ...func(*route53.Options)) (*route53.GetHealthCheckStatusOutput, error)
}

var (
	_ API                    = (*route53.Client)(nil)
	_ target.Target          = (*Target)(nil)
	_ target.Describer       = (*Target)(nil)
	_ target.RepairPlanner   = (*Target)(nil)
	_ target.InstallRecorder = (*Target)(nil)
)

// Config selects the records and says how to check the colors.
type Config struct {
	// DNSName is dns-name, e.g. api.example.com.
	DNSName string
	// HostedZoneID is hosted-zone-id; empty: the zone is found from
	// DNSName (ListHostedZonesByName, the longest zone name that matches).
	HostedZoneID string
	// HealthCheckURL is health-check-url: {host} is replaced by each of
	// the color's record values (address, CNAME target, alias name). When
	// a color's record has a Route 53 health check, that is asked instead.
	HealthCheckURL string
	// Dial, when set, replaces the probe's dialer: tests send the probe of
	// a record's address to a server on 127.0.0.1.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// PollInterval is how often GetChange and Verify ask again (default 2s).
	PollInterval time.Duration
	// ChangeTimeout bounds the wait for INSYNC (default 5m).
	ChangeTimeout time.Duration
	// ProbeTimeout bounds one health probe (default 5s).
	ProbeTimeout time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Logf receives progress lines (default: none).
	Logf func(format string, args ...any)
}

// Target is a name in a Route 53 hosted zone with weighted blue and green
// records.
type Target struct {
	api  API
	cfg  Config
	name string // fqdn(DNSName)
	hc   *http.Client

	mu sync.Mutex
	// last is the most recent read: Plan given its State costs no call.
	last *snapshot
	// zone, zoneName: the zone found from the name, asked once.
	zone, zoneName string
}

// New checks cfg and returns the target; it makes no API call.
func New(api API, cfg Config) (*Target, error) {
	name := strings.TrimSuffix(strings.TrimSpace(cfg.DNSName), ".")
	if name == "" {
		return nil, fmt.Errorf("%w: set dns-name in .oopsrc", target.ErrMisconfigured)
	}
	if !strings.Contains(name, ".") || strings.ContainsAny(name, " /:@") {
		return nil, fmt.Errorf("%w: dns-name %q is not a DNS name like api.example.com", target.ErrMisconfigured, cfg.DNSName)
	}
	if cfg.HealthCheckURL != "" && !strings.Contains(cfg.HealthCheckURL, "{host}") {
		return nil, fmt.Errorf("%w: health-check-url %q has no {host}: the dns target probes each color's record value there", target.ErrMisconfigured, cfg.HealthCheckURL)
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = 2 * time.Second
	}
	if cfg.ChangeTimeout <= 0 {
		cfg.ChangeTimeout = 5 * time.Minute
	}
	if cfg.ProbeTimeout <= 0 {
		cfg.ProbeTimeout = 5 * time.Second
	}
	hc := health.Client(cfg.ProbeTimeout)
	if cfg.Dial != nil {
		hc.Transport.(*http.Transport).DialContext = cfg.Dial
	}
	return &Target{api: api, cfg: cfg, name: fqdn(name), hc: hc}, nil
}

func (t *Target) String() string { return "Route 53 " + strings.TrimSuffix(t.name, ".") }

func (t *Target) now() time.Time {
	if t.cfg.Now != nil {
		return t.cfg.Now()
	}
	return time.Now()
}

func (t *Target) logf(format string, args ...any) {
	if t.cfg.Logf != nil {
		t.cfg.Logf(format, args...)
	}
}

// State reads the records and oops's TXT record. A record set oops will
// not switch (edited by hand) comes back with an error that says exactly
// what is wrong and the fix, wrapping target.ErrInconsistent or
// target.ErrMisconfigured.
func (t *Target) State(ctx context.Context) (*target.State, error) {
	s, err := t.read(ctx)
	if err != nil {
		return nil, err
	}
	return s.state, s.problem
}

// Describe is State plus each color's health, as the gate sees it.
func (t *Target) Describe(ctx context.Context) (*target.State, error) {
	s, err := t.read(ctx)
	if err != nil {
		return nil, err
	}
	if len(s.pairs) > 0 && t.gated(s) {
		for _, cs := range []*target.ColorState{&s.state.Live, &s.state.Off} {
			ins, err := t.check(ctx, s, cs.Color)
			if err != nil {
				return s.state, err
			}
			cs.Instances = ins
			ok := len(ins) > 0
			for _, in := range ins {
				ok = ok && in.Healthy
			}
			cs.Healthy = aws.Bool(ok)
		}
	}
	return s.state, s.problem
}

// Plan describes giving color to weight percent and the other color the
// rest, in one change batch.
func (t *Target) Plan(ctx context.Context, st *target.State, to release.Color, weight int) (*target.Plan, error) {
	if !to.Valid() {
		return nil, fmt.Errorf("plan switch: %q is not a color", to)
	}
	if weight < 0 || weight > 100 {
		return nil, fmt.Errorf("plan switch: weight %d is not a percentage (0-100)", weight)
	}
	s, err := t.snapshotFor(ctx, st)
	if err != nil {
		return nil, err
	}
	if s.problem != nil {
		return nil, s.problem
	}
	return t.plan(s, to, weight, ""), nil
}

// change is what Apply sends for a plan.
type change struct {
	snap    *snapshot
	weights [2]int
	meta    meta
}

// plan builds the batch that gives to weight percent.
func (t *Target) plan(s *snapshot, to release.Color, weight int, why string) *target.Plan {
	w := [2]int{weight, 100 - weight}
	if to == release.Green {
		w = [2]int{100 - weight, weight}
	}
	m := s.meta.clone()
	split := w[0] > 0 && w[1] > 0
	m.base = ""
	if split {
		m.base = s.state.Live.Color
		if s.state.Base != "" {
			m.base = s.state.Base
		}
	}
	switch {
	case w[0] > w[1]:
		m.live = release.Blue
	case w[1] > w[0]:
		m.live = release.Green
	default:
		m.live = m.base
	}
	// Not who switched: the record is public with a public zone, and a
	// login@host is not the internet's business (oops history has it).
	m.weights, m.hasW, m.by = w, true, ""
	c := &change{snap: s, weights: w, meta: m}

	var steps []string
	if why != "" {
		steps = append(steps, why)
	}
	var ups []string
	for _, p := range s.pairs {
		for i, col := range []release.Color{release.Blue, release.Green} {
			ups = append(ups, fmt.Sprintf("%s %s weight %d (was %d)", p.typ, col, w[i], p.recs[col].weight))
		}
	}
	steps = append(steps,
		fmt.Sprintf("ChangeResourceRecordSets on hosted zone %s, one atomic batch of UPSERTs of %s: %s; and %s TXT (the switch's time and weights, for status and repair)",
			s.zone, t.name, strings.Join(ups, ", "), fqdn(MetaPrefix+t.name)),
		fmt.Sprintf("GetChange every %s until INSYNC (every Route 53 name server answers the new weights)", t.cfg.PollInterval))
	from := to.Other()
	if ttl := s.ttl(); !split {
		steps = append(steps, fmt.Sprintf("then clients that resolved %s before may reach %s for up to the TTL (%s): oops status says when it can be stopped", strings.TrimSuffix(t.name, "."), from, ttl))
	}
	return target.NewPlan(from, to, weight, steps, func(ctx context.Context) error { return t.apply(ctx, c) })
}

// Apply sends the plan's one change batch and waits until it is INSYNC.
// Route 53 applies a batch whole or not at all, and the batch carries
// oops's record of the switch (a new switch id) with the weights: if the
// answer is lost, one read says whether the switch happened, and there
// is never a half-switched record set to repair.
func (t *Target) Apply(ctx context.Context, p *target.Plan) error {
	t.mu.Lock()
	t.last = nil // whatever happens, the next read must ask Route 53
	t.mu.Unlock()
	return p.Run(ctx)
}

func (t *Target) apply(ctx context.Context, c *change) error {
	defer func() {
		t.mu.Lock()
		t.last = nil
		t.mu.Unlock()
	}()
	if err := t.unchangedSince(ctx, c); err != nil {
		return err
	}
	c.meta.switched = t.now().UTC().Truncate(time.Second)
	c.meta.id = newID()
	var changes []types.Change
	for _, p := range c.snap.pairs {
		for i, col := range []release.Color{release.Blue, release.Green} {
			rs := p.recs[col].set
			rs.Weight = aws.Int64(int64(c.weights[i]))
			changes = append(changes, types.Change{Action: types.ChangeActionUpsert, ResourceRecordSet: &rs})
		}
	}
	changes = append(changes, t.metaChange(c.meta))
	id, err := t.send(ctx, c.snap.zone, changes, fmt.Sprintf("oops: blue %d, green %d", c.weights[0], c.weights[1]), c.meta.id)
	if err != nil {
		return err
	}
	return t.waitInSync(ctx, id)
}

// unchangedSince reads the records again just before the change: they
// were read before the health gate, the confirmation and the pre-switch
// hook, which can take minutes in an incident, and the batch UPSERTs each
// record whole. A record edited by hand meanwhile (pointed at a new
// stack) would be put back as it was read; instead nothing is changed.
func (t *Target) unchangedSince(ctx context.Context, c *change) error {
	now, err := t.read(ctx)
	if err != nil {
		return err
	}
	if now.problem != nil && !now.repairable {
		// A record added or removed (a repair starts from weights that
		// need mending: those are compared below).
		return fmt.Errorf("%s changed since it was read, before the switch: %w", t, now.problem)
	}
	var changed []string
	if len(now.pairs) != len(c.snap.pairs) {
		changed = append(changed, "the record types")
	}
	for _, p := range c.snap.pairs {
		var q *pair
		for _, x := range now.pairs {
			if x.typ == p.typ {
				q = x
			}
		}
		for _, col := range []release.Color{release.Blue, release.Green} {
			if q == nil || recordKey(q.recs[col]) != recordKey(p.recs[col]) {
				was, is := p.recs[col].describe(), "none"
				if q != nil && q.recs[col] != nil {
					is = fmt.Sprintf("%s weight %d TTL %s", q.recs[col].describe(), q.recs[col].weight, q.recs[col].ttl())
				}
				changed = append(changed, fmt.Sprintf("%s %s (was %s weight %d TTL %s, is %s)", p.typ, col, was, p.recs[col].weight, p.recs[col].ttl(), is))
			}
		}
	}
	if len(changed) > 0 {
		return target.Hinted(fmt.Errorf("%w: the records of %s changed since oops read them, before the switch: %s; nothing was changed",
			target.ErrInconsistent, t.name, strings.Join(changed, ", ")),
			"someone edited them meanwhile: run `oops status` to see them, then the command again")
	}
	// What a hook may have recorded meanwhile (oops under the lock's
	// token) is kept; the switch's own fields are the plan's.
	c.meta.commit, c.meta.installing = now.meta.clone().commit, now.meta.clone().installing
	return nil
}

// recordKey is what a switch must find unchanged in a record: all of it.
func recordKey(r *rec) string {
	if r == nil {
		return ""
	}
	rs := r.set
	var alias string
	if a := rs.AliasTarget; a != nil {
		alias = fmt.Sprintf("%s/%s/%v", aws.ToString(a.DNSName), aws.ToString(a.HostedZoneId), a.EvaluateTargetHealth)
	}
	return fmt.Sprintf("%d|%d|%q|%s|%s", r.weight, aws.ToInt64(rs.TTL), r.values, alias, aws.ToString(rs.HealthCheckId))
}

// send makes one ChangeResourceRecordSets after the fence check; when the
// answer is lost it reads whether the change landed (the TXT record
// carries switchID) and returns "" for a change that did.
func (t *Target) send(ctx context.Context, zone string, changes []types.Change, comment, switchID string) (string, error) {
	if err := target.CheckFence(ctx); err != nil {
		return "", err
	}
	out, err := t.api.ChangeResourceRecordSets(ctx, &route53.ChangeResourceRecordSetsInput{
		HostedZoneId: aws.String(zone),
		ChangeBatch:  &types.ChangeBatch{Changes: changes, Comment: aws.String(comment)},
	})
	if err == nil {
		return aws.ToString(out.ChangeInfo.Id), nil
	}
	if !isAPIError(err) && ctx.Err() == nil && switchID != "" {
		if s, rerr := t.read(ctx); rerr == nil {
			if s.meta.id == switchID {
				t.logf("%s: the answer to ChangeResourceRecordSets was lost, but the change landed", t)
				return "", nil
			}
			return "", target.Hinted(fmt.Errorf("%w (nothing changed: the records are as before)", t.explain("ChangeResourceRecordSets", zone, err)),
				"run the command again")
		}
		return "", target.Hinted(fmt.Errorf("%w (it may or may not have changed: Route 53 applies a batch whole or not at all)", t.explain("ChangeResourceRecordSets", zone, err)),
			"run `oops status` to see the weights")
	}
	return "", t.explain("ChangeResourceRecordSets", zone, err)
}

// waitInSync asks GetChange until the change is INSYNC.
func (t *Target) waitInSync(ctx context.Context, id string) error {
	if id == "" {
		return nil // landed without an answer: nothing to ask about
	}
	deadline := time.Now().Add(t.cfg.ChangeTimeout)
	for {
		out, err := t.api.GetChange(ctx, &route53.GetChangeInput{Id: aws.String(id)})
		switch {
		case err != nil && isAPIError(err):
			return t.unsynced(id, t.explain("GetChange", id, err))
		case err != nil:
			err = t.explain("GetChange", id, err) // no answer: ask again
		case out.ChangeInfo != nil && out.ChangeInfo.Status == types.ChangeStatusInsync:
			return nil
		case out.ChangeInfo != nil:
			err = fmt.Errorf("still %s after %s", out.ChangeInfo.Status, t.cfg.ChangeTimeout)
		default:
			err = fmt.Errorf("GetChange said nothing about it")
		}
		if !time.Now().Add(t.cfg.PollInterval).Before(deadline) {
			return t.unsynced(id, err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: the change %s was made; stopped waiting for INSYNC: %w", t, id, ctx.Err())
		case <-time.After(t.cfg.PollInterval):
		}
	}
}

// unsynced says that a change was made but not seen INSYNC.
func (t *Target) unsynced(id string, err error) error {
	return target.Hinted(fmt.Errorf("%s: the change %s was made, but whether every Route 53 name server has it is not known: %w", t, id, err),
		"Route 53 finishes a change it accepted by itself; run `oops status` to see the weights")
}

// metaChange is the UPSERT of oops's TXT record with m.
func (t *Target) metaChange(m meta) types.Change {
	var rr []types.ResourceRecord
	for _, v := range m.values() {
		rr = append(rr, types.ResourceRecord{Value: aws.String(v)})
	}
	if len(rr) == 0 {
		rr = []types.ResourceRecord{{Value: aws.String(`"oops"`)}}
	}
	return types.Change{Action: types.ChangeActionUpsert, ResourceRecordSet: &types.ResourceRecordSet{
		Name: aws.String(fqdn(MetaPrefix + t.name)), Type: types.RRTypeTxt, TTL: aws.Int64(metaTTL), ResourceRecords: rr,
	}}
}

// SetCommit records in the TXT record that c runs commit (and clears its
// installing mark): one ChangeResourceRecordSets. It does not wait for
// INSYNC: oops reads the record through the API, which has it at once.
func (t *Target) SetCommit(ctx context.Context, c release.Color, commit string) error {
	return t.setMeta(ctx, c, commit, false)
}

// SetInstalling marks c as installing commit (target.InstallRecorder).
func (t *Target) SetInstalling(ctx context.Context, c release.Color, commit string) error {
	return t.setMeta(ctx, c, commit, true)
}

func (t *Target) setMeta(ctx context.Context, c release.Color, commit string, installing bool) error {
	if !c.Valid() {
		return fmt.Errorf("record commit: %q is not a color", c)
	}
	if !shaRE.MatchString(commit) && (!installing || commit != "") {
		return fmt.Errorf("record commit of %s: %q is not a full commit SHA", c, commit)
	}
	s, err := t.read(ctx)
	if err != nil {
		return err
	}
	m := s.meta.clone()
	switch {
	case installing && commit == "": // the install never started
		delete(m.installing, c)
	case installing:
		m.installing[c] = commit
	default:
		m.commit[c] = commit
		delete(m.installing, c)
	}
	if _, err := t.send(ctx, s.zone, []types.Change{t.metaChange(m)}, "oops: commit of "+string(c), ""); err != nil {
		return err
	}
	t.mu.Lock()
	t.last = nil
	t.mu.Unlock()
	return nil
}

// PlanRepair plans giving color to all traffic when the record set was
// left in a state oops will not switch from but can mend by setting
// weights (both 0, or types disagreeing). With to empty it picks the color
// oops's last switch made live, else the larger weight. Nil when nothing
// needs repairing. Missing and third records are not oops's to create or
// delete: their error says the fix.
func (t *Target) PlanRepair(ctx context.Context, to release.Color) (*target.Plan, error) {
	if to != "" && !to.Valid() {
		return nil, fmt.Errorf("plan repair: %q is not a color", to)
	}
	s, err := t.read(ctx)
	if err != nil {
		return nil, err
	}
	if s.problem == nil {
		if to == "" || to == s.state.Live.Color && s.state.Live.Weight == 100 {
			return nil, nil
		}
		return nil, fmt.Errorf("%s is consistent (blue %d, green %d): nothing to repair (to move traffic, run oops rollback, oops shift or oops promote)",
			t, s.weights[0], s.weights[1])
	}
	if !s.repairable {
		return nil, s.problem
	}
	why := fmt.Sprintf("give %s all traffic, as asked", to)
	if to == "" {
		switch {
		case s.weights[0] != s.weights[1]:
			to = s.state.Live.Color
			why = fmt.Sprintf("give %s all traffic: it has the larger weight", to)
		case s.meta.live != "":
			to = s.meta.live
			why = fmt.Sprintf("give %s all traffic: oops's last switch made it live (%s TXT)", to, fqdn(MetaPrefix+t.name))
		default:
			return nil, target.Hinted(fmt.Errorf("repair %s: %w", t, s.problem), "choose the color: `oops repair --to blue` or `oops repair --to green`")
		}
	}
	return t.plan(s, to, 100, why), nil
}

// Repair mends the record set (see PlanRepair) and says what it did.
func (t *Target) Repair(ctx context.Context) (string, error) {
	p, err := t.PlanRepair(ctx, "")
	if err != nil || p == nil {
		return "", err
	}
	if err := t.Apply(ctx, p); err != nil {
		return "", fmt.Errorf("repair %s: %w", t, err)
	}
	return fmt.Sprintf("%s: %s", t, p.Steps[0]), nil
}

// snapshotFor returns the read that produced st, or reads again.
func (t *Target) snapshotFor(ctx context.Context, st *target.State) (*snapshot, error) {
	t.mu.Lock()
	s := t.last
	t.mu.Unlock()
	if s != nil && st != nil && s.state == st {
		return s, nil
	}
	return t.read(ctx)
}

func newID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// explain turns the error of API operation op on what into one line.
func (t *Target) explain(op, what string, err error) error {
	call := fmt.Sprintf("%s: %s", t, op)
	if what != "" {
		call += " " + what
	}
	return target.APICall{
		Name: call, Perm: "route53:" + op,
		Stale: []string{"InvalidChangeBatch", "NoSuchHealthCheck", "NoSuchHostedZone"},
		Says: func(code string) string {
			if code == "PriorRequestNotComplete" {
				return call + ": Route 53 is still applying an earlier change to this zone; wait a few seconds and run the command again"
			}
			return ""
		},
		NoAnswer: func(err error) string { return fmt.Sprintf("%s: no answer from Route 53: %v", call, err) },
	}.Explain(err)
}

func isAPIError(err error) bool {
	var ae smithy.APIError
	return errors.As(err, &ae)
}

func isCode(err error, code string) bool {
	var ae smithy.APIError
	return errors.As(err, &ae) && ae.ErrorCode() == code
}
