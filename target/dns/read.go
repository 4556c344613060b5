package dns

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/route53"
	"github.com/aws/aws-sdk-go-v2/service/route53/types"

	"github.com/oops-deploy/oops/release"
	"github.com/oops-deploy/oops/target"
)

// maxWeight is the largest weight Route 53 takes.
const maxWeight = 255

// aliasTTL is what clients cache an alias record for: the TTL of the load
// balancer or CloudFront name it points at, 60s for both.
const aliasTTL = 60 * time.Second

// rec is one color's weighted record of one type.
type rec struct {
	set    types.ResourceRecordSet
	weight int
	// values are what clients reach: addresses, the CNAME's target, or
	// the alias target's DNS name (trailing dots removed).
	values []string
}

// ttl is how long resolvers may cache the record.
func (r *rec) ttl() time.Duration {
	if r.set.AliasTarget != nil {
		return aliasTTL
	}
	return time.Duration(aws.ToInt64(r.set.TTL)) * time.Second
}

// describe is "A 10.0.0.1, 10.0.0.2" or "alias A dualstack.web-blue...".
func (r *rec) describe() string {
	s := string(r.set.Type) + " " + strings.Join(r.values, ", ")
	if r.set.AliasTarget != nil {
		s = "alias " + s
	}
	return s
}

// pair is the blue and green records of one type (CNAME, A or AAAA).
type pair struct {
	typ  types.RRType
	recs map[release.Color]*rec
}

// snapshot is one read of the hosted zone.
type snapshot struct {
	zone     string // hosted zone id, without /hostedzone/
	zoneName string
	pairs    []*pair
	meta     meta
	// metaProblems are the TXT record's entries oops cannot read (edited
	// by hand), left out.
	metaProblems []string
	// weights are blue's and green's when every pair agrees.
	weights [2]int
	state   *target.State
	// problem says what is wrong with the record set (wraps
	// target.ErrInconsistent or target.ErrMisconfigured); repairable when
	// PlanRepair can fix it by setting weights.
	problem    error
	repairable bool
}

func (s *snapshot) ttl() time.Duration {
	var d time.Duration
	for _, p := range s.pairs {
		for _, r := range p.recs {
			d = max(d, r.ttl())
		}
	}
	return d
}

// fqdn is name in Route 53's form: lower case, with the trailing dot.
func fqdn(name string) string {
	return strings.ToLower(strings.TrimSuffix(name, ".")) + "."
}

// zoneID drops the /hostedzone/ prefix Route 53 puts on ids.
func zoneID(id string) string {
	return strings.TrimPrefix(strings.TrimPrefix(id, "/"), "hostedzone/")
}

// findZone finds the hosted zone of dns-name: the longest zone name that
// the name ends with. Every candidate suffix is asked at once (one round
// trip); hosted-zone-id saves these calls.
func (t *Target) findZone(ctx context.Context) (id, name string, err error) {
	labels := strings.Split(strings.TrimSuffix(t.name, "."), ".")
	type answer struct {
		ids []string
		err error
	}
	answers := make([]answer, len(labels))
	var wg sync.WaitGroup
	for i := range labels {
		suffix := strings.Join(labels[i:], ".") + "."
		wg.Go(func() {
			out, err := t.api.ListHostedZonesByName(ctx, &route53.ListHostedZonesByNameInput{DNSName: aws.String(suffix), MaxItems: aws.Int32(20)})
			if err != nil {
				answers[i].err = err
				return
			}
			// AWS lists zones from DNSName on, in order: keep exact names.
			for _, z := range out.HostedZones {
				if fqdn(aws.ToString(z.Name)) == suffix {
					answers[i].ids = append(answers[i].ids, zoneID(aws.ToString(z.Id)))
				}
			}
		})
	}
	wg.Wait()
	for i, a := range answers {
		if a.err != nil {
			return "", "", t.explain("ListHostedZonesByName", "", a.err)
		}
		suffix := strings.Join(labels[i:], ".") + "."
		switch len(a.ids) {
		case 0:
			continue
		case 1:
			return a.ids[0], suffix, nil
		default:
			return "", "", target.Hinted(fmt.Errorf("%w: %d hosted zones are named %s (%s): oops will not guess which one serves %s",
				target.ErrMisconfigured, len(a.ids), suffix, strings.Join(a.ids, ", "), t.name),
				`set "hosted-zone-id" in .oopsrc to the right one (a public and a private zone may share a name)`)
		}
	}
	return "", "", target.Hinted(fmt.Errorf("%w: no hosted zone in this account serves %s", target.ErrMisconfigured, t.name),
		`check dns-name and the AWS account, or set "hosted-zone-id" in .oopsrc`)
}

// read asks Route 53 for the records of dns-name and oops's TXT record:
// one ListResourceRecordSets (more only in a zone with many records under
// the name), plus the zone lookup when hosted-zone-id is not set.
func (t *Target) read(ctx context.Context) (*snapshot, error) {
	s := &snapshot{zone: t.cfg.HostedZoneID}
	t.mu.Lock()
	if s.zone == "" {
		s.zone, s.zoneName = t.zone, t.zoneName
	}
	t.mu.Unlock()
	if s.zone == "" {
		var err error
		if s.zone, s.zoneName, err = t.findZone(ctx); err != nil {
			return nil, err
		}
		t.mu.Lock()
		t.zone, t.zoneName = s.zone, s.zoneName
		t.mu.Unlock()
	}
	s.zone = zoneID(s.zone)
	metaName := fqdn(MetaPrefix + t.name)
	var sets []types.ResourceRecordSet
	var metaSet *types.ResourceRecordSet
	in := &route53.ListResourceRecordSetsInput{HostedZoneId: aws.String(s.zone), StartRecordName: aws.String(t.name), MaxItems: aws.Int32(300)}
	for {
		out, err := t.api.ListResourceRecordSets(ctx, in)
		if isCode(err, "NoSuchHostedZone") {
			return nil, target.Hinted(fmt.Errorf("%w: hosted zone %s not found", target.ErrMisconfigured, s.zone),
				`check "hosted-zone-id" in .oopsrc (or leave it out: oops finds the zone from dns-name) and the AWS account`)
		}
		if err != nil {
			return nil, t.explain("ListResourceRecordSets", s.zone, err)
		}
		more := out.IsTruncated
		for i, rs := range out.ResourceRecordSets {
			switch n := fqdn(unescape(aws.ToString(rs.Name))); {
			case n == t.name:
				sets = append(sets, rs)
			case n == metaName && rs.Type == types.RRTypeTxt:
				metaSet = &out.ResourceRecordSets[i]
			case !strings.HasSuffix(n, "."+t.name):
				// Past the name and its subdomains, where _oops sorts.
				more = false
			}
		}
		if !more || metaSet != nil {
			break
		}
		in.StartRecordName, in.StartRecordType, in.StartRecordIdentifier = out.NextRecordName, out.NextRecordType, out.NextRecordIdentifier
	}
	if metaSet != nil {
		var vals []string
		for _, r := range metaSet.ResourceRecords {
			vals = append(vals, aws.ToString(r.Value))
		}
		s.meta, s.metaProblems = parseMeta(vals)
	} else {
		s.meta, _ = parseMeta(nil)
	}
	s.check(t, sets)
	t.mu.Lock()
	t.last = s
	t.mu.Unlock()
	return s, nil
}

// check sorts the records into pairs and builds the State and, for a
// record set oops will not switch, the problem with its fix.
func (s *snapshot) check(t *Target, sets []types.ResourceRecordSet) {
	byType := map[types.RRType]*pair{}
	var strays []string // weighted records that are no color
	var policy []string // color records that are not weighted
	for _, rs := range sets {
		id := aws.ToString(rs.SetIdentifier)
		if id == "" {
			continue // a simple record of another type (MX, TXT): not ours
		}
		if rs.Type != types.RRTypeA && rs.Type != types.RRTypeAaaa && rs.Type != types.RRTypeCname {
			continue
		}
		c := release.Color(id)
		if rs.Weight == nil {
			if c.Valid() {
				policy = append(policy, fmt.Sprintf("%s %s %s", t.name, rs.Type, id))
			}
			continue
		}
		if !c.Valid() {
			strays = append(strays, fmt.Sprintf("%s %s SetIdentifier %q (weight %d)", t.name, rs.Type, id, aws.ToInt64(rs.Weight)))
			continue
		}
		p := byType[rs.Type]
		if p == nil {
			p = &pair{typ: rs.Type, recs: map[release.Color]*rec{}}
			byType[rs.Type] = p
		}
		r := &rec{set: rs, weight: int(aws.ToInt64(rs.Weight))}
		if rs.AliasTarget != nil {
			r.values = []string{strings.TrimSuffix(aws.ToString(rs.AliasTarget.DNSName), ".")}
		}
		for _, v := range rs.ResourceRecords {
			r.values = append(r.values, strings.TrimSuffix(aws.ToString(v.Value), "."))
		}
		p.recs[c] = r
	}
	for _, p := range byType {
		s.pairs = append(s.pairs, p)
	}
	sort.Slice(s.pairs, func(i, j int) bool { return s.pairs[i].typ < s.pairs[j].typ })

	st := &target.State{Kind: "dns", Name: strings.TrimSuffix(t.name, ".")}
	s.state = st
	zoneHint := fmt.Sprintf("aws route53 change-resource-record-sets --hosted-zone-id %s --change-batch file://change.json", s.zone)
	switch {
	case len(policy) > 0:
		s.problem = target.Hinted(fmt.Errorf("%w: %s use another routing policy than weighted; oops switches weighted records", target.ErrMisconfigured, strings.Join(policy, ", ")),
			"make the blue and green records weighted (Weight 0-255): "+zoneHint)
	case len(s.pairs) == 0 && len(strays) == 0:
		s.problem = target.Hinted(fmt.Errorf("%w: hosted zone %s has no weighted records named %s", target.ErrMisconfigured, s.zone, t.name),
			"create two weighted records of that name and type (CNAME, A, AAAA or alias A), SetIdentifier blue and green, weight 100 on the live one and 0 on the other: "+zoneHint)
	case len(strays) > 0:
		s.problem = target.Hinted(fmt.Errorf("%w: besides blue and green, %s has the weighted record %s: it takes traffic oops cannot move",
			target.ErrInconsistent, t.name, strings.Join(strays, ", ")),
			"delete it (or, if it is a color, give it SetIdentifier blue or green, lower case): "+zoneHint)
	}
	if s.problem == nil {
		for _, p := range s.pairs {
			for _, c := range []release.Color{release.Blue, release.Green} {
				if p.recs[c] == nil {
					s.problem = target.Hinted(fmt.Errorf("%w: %s %s has no %s record (SetIdentifier %s): there is no %s color to switch to",
						target.ErrMisconfigured, t.name, p.typ, c, c, c),
						fmt.Sprintf("create it: a weighted %s record named %s, SetIdentifier %s, weight 0, pointing at the %s stack: %s", p.typ, t.name, c, c, zoneHint))
					break
				}
			}
			if s.problem != nil {
				break
			}
		}
	}
	if s.problem != nil && len(s.pairs) == 0 {
		s.state.Live = target.ColorState{Color: release.Blue, Commit: s.commit(release.Blue)}
		s.state.Off = target.ColorState{Color: release.Green, Commit: s.commit(release.Green)}
		return
	}
	// Weights: every pair must agree, else a hand edit split them.
	w := [2]int{-1, -1}
	var differ []string
	for _, p := range s.pairs {
		for i, c := range []release.Color{release.Blue, release.Green} {
			r := p.recs[c]
			if r == nil {
				continue
			}
			if w[i] < 0 {
				w[i] = r.weight
			} else if w[i] != r.weight {
				differ = append(differ, string(c))
			}
		}
	}
	w[0], w[1] = max(w[0], 0), max(w[1], 0)
	s.weights = w
	tie := release.Blue
	if s.meta.base != "" {
		tie = s.meta.base
	} else if s.meta.live != "" {
		tie = s.meta.live
	}
	live := tie
	switch {
	case w[0] > w[1]:
		live = release.Blue
	case w[1] > w[0]:
		live = release.Green
	}
	// Percentages of the relative weights, rounded, adding up to 100.
	pct := func(c release.Color) int {
		sum := w[0] + w[1]
		if sum == 0 {
			return 0
		}
		blue := (200*w[0] + sum) / (2 * sum)
		if c == release.Green {
			return 100 - blue
		}
		return blue
	}
	cs := func(c release.Color) target.ColorState {
		out := target.ColorState{Color: c, Commit: s.commit(c), Weight: pct(c), Record: s.recordOf(c)}
		if v := s.meta.installing[c]; v != "" {
			out.Commit, out.Installing = v, true
		}
		return out
	}
	st.Live, st.Off = cs(live), cs(live.Other())
	if w[0] > 0 && w[1] > 0 {
		st.Base = live
		if s.meta.base != "" {
			st.Base = s.meta.base
		}
	}
	st.Notes = s.notes(t)
	if s.problem != nil {
		return
	}
	switch {
	case len(differ) > 0:
		s.problem = target.Hinted(fmt.Errorf("%w: the records of %s disagree on the weights (%s): they were edited by hand",
			target.ErrInconsistent, t.name, s.weightsByType()),
			fmt.Sprintf("run `oops repair` to put all traffic on %s (the larger weight), or `oops repair --to %s`", live, live.Other()))
		s.repairable = true
	case w[0] == 0 && w[1] == 0:
		hint := "run `oops repair --to blue` or `oops repair --to green` to choose"
		if s.meta.live != "" {
			hint = fmt.Sprintf("run `oops repair` to give %s (live after oops's last switch) all traffic, or `oops repair --to %s`", s.meta.live, s.meta.live.Other())
		}
		s.problem = target.Hinted(fmt.Errorf("%w: both records of %s have weight 0, so Route 53 answers with both at equal odds (50/50)",
			target.ErrInconsistent, t.name), hint)
		s.repairable = true
	}
}

// commit is what the TXT record says c runs.
func (s *snapshot) commit(c release.Color) string {
	if v := s.meta.commit[c]; v != "" {
		return v
	}
	return target.UnknownCommit
}

// recordOf names c's record(s) for messages: "A 10.0.0.1".
func (s *snapshot) recordOf(c release.Color) string {
	var parts []string
	for _, p := range s.pairs {
		if r := p.recs[c]; r != nil {
			parts = append(parts, r.describe())
		}
	}
	return strings.Join(parts, "; ")
}

func (s *snapshot) weightsByType() string {
	var parts []string
	for _, p := range s.pairs {
		var ws []string
		for _, c := range []release.Color{release.Blue, release.Green} {
			if r := p.recs[c]; r != nil {
				ws = append(ws, fmt.Sprintf("%s %d", c, r.weight))
			}
		}
		parts = append(parts, fmt.Sprintf("%s: %s", p.typ, strings.Join(ws, ", ")))
	}
	return strings.Join(parts, "; ")
}

// notes are status's lines: each record with its weight and TTL, and
// when the color switched away from can be stopped.
func (s *snapshot) notes(t *Target) []target.Note {
	var out []target.Note
	for _, p := range s.pairs {
		for _, c := range []release.Color{release.Blue, release.Green} {
			r := p.recs[c]
			if r == nil {
				continue
			}
			line := fmt.Sprintf("%s %s -> %s, weight %d, TTL %s", c, t.name, r.describe(), r.weight, r.ttl())
			if r.set.AliasTarget != nil {
				line = fmt.Sprintf("%s %s -> %s, weight %d, TTL %s (the alias target's)", c, t.name, r.describe(), r.weight, r.ttl())
			}
			if id := aws.ToString(r.set.HealthCheckId); id != "" {
				line += ", Route 53 health check " + id
			}
			out = append(out, target.Note{Name: "record", Text: line})
		}
	}
	for _, p := range s.metaProblems {
		out = append(out, target.Note{Name: "ignored", Text: fmt.Sprintf("%s TXT entry %s (oops rewrites the record at the next switch)", fqdn(MetaPrefix+t.name), p)})
	}
	ttl := s.ttl()
	w := s.weights
	s.state.Propagation = &target.Propagation{TTLSeconds: int(ttl / time.Second)}
	if m := s.meta; !m.switched.IsZero() && m.hasW && m.weights == w {
		s.state.Propagation.SwitchedAt = m.switched
		s.state.Propagation.OldColorUntil = m.switched.Add(ttl)
	}
	switch {
	case w[0] > 0 && w[1] > 0:
		out = append(out, target.Note{Name: "ttl", Text: fmt.Sprintf("%s: both colors take traffic (a canary); keep both running", ttl)})
		return out
	case w[0] == 0 && w[1] == 0:
		return out
	}
	live := release.Blue
	if w[1] > w[0] {
		live = release.Green
	}
	old := live.Other()
	m := s.meta
	if m.switched.IsZero() || !m.hasW || m.weights != w {
		out = append(out, target.Note{Name: "switched", Text: fmt.Sprintf(
			"unknown: the weights were not set by oops, or were changed by hand since its last switch; clients may reach %s for up to %s (the TTL) after that change", old, ttl)})
		return out
	}
	ago := t.now().Sub(m.switched).Truncate(time.Second)
	text := fmt.Sprintf("%s ago (%s)", ago, m.switched.Format(time.RFC3339))
	if m.by != "" {
		text += " by " + m.by
	}
	if free := m.switched.Add(ttl); t.now().Before(free) {
		text += fmt.Sprintf("; TTL %s: clients may reach %s until %s (%s from now): stop it after that",
			ttl, old, free.Format(time.RFC3339), free.Sub(t.now()).Truncate(time.Second))
	} else {
		text += fmt.Sprintf("; TTL %s: that has passed, so %s can be stopped (resolvers that ignore TTLs may hold on longer)", ttl, old)
	}
	out = append(out, target.Note{Name: "switched", Text: text})
	return out
}

// unescape undoes Route 53's \052 for "*" and other escapes in names.
func unescape(name string) string {
	if !strings.Contains(name, `\`) {
		return name
	}
	parts := txtStrings(strings.ReplaceAll(name, " ", `\040`))
	return strings.Join(parts, "")
}
