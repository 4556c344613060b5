// Package dnstest builds Route 53 fixtures on moto for the dns target's
// tests: a hosted zone with weighted blue and green records. The record
// values are fake addresses that are never dialed: tests send the probes
// to 127.0.0.1 (dns.Config.Dial).
package dnstest

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/route53"
	"github.com/aws/aws-sdk-go-v2/service/route53/types"

	"github.com/oops-deploy/oops/release"
)

// Addr is the fake address each color's A record points at.
var Addr = map[release.Color]string{release.Blue: "10.0.0.1", release.Green: "10.0.0.2"}

// Zone is one hosted zone with the records of one name.
type Zone struct {
	ID   string // without /hostedzone/
	Name string // the zone, "z1.example.com."
	// Record is the colors' name, "api.<zone>" without the trailing dot.
	Record string
	api    *route53.Client
}

// Options shape the fixture.
type Options struct {
	// Zone is the zone's name (without trailing dot).
	Zone string
	// Weights are blue's and green's (default 100 and 0).
	Weights *[2]int
	// Type is A (default) or CNAME.
	Type types.RRType
	// TTL of the records (default 60).
	TTL int64
	// Values replace Addr as the colors' record values.
	Values map[release.Color]string
}

// New creates the zone and the records api.<zone> A blue and green.
func New(ctx context.Context, cfg aws.Config, o Options) (*Zone, error) {
	api := route53.NewFromConfig(cfg)
	out, err := api.CreateHostedZone(ctx, &route53.CreateHostedZoneInput{
		Name: aws.String(o.Zone), CallerReference: aws.String(fmt.Sprintf("%s-%d", o.Zone, time.Now().UnixNano())),
	})
	if err != nil {
		return nil, fmt.Errorf("create hosted zone %s: %w", o.Zone, err)
	}
	z := &Zone{ID: strings.TrimPrefix(aws.ToString(out.HostedZone.Id), "/hostedzone/"), Name: o.Zone + ".", Record: "api." + o.Zone, api: api}
	w := [2]int{100, 0}
	if o.Weights != nil {
		w = *o.Weights
	}
	if o.Type == "" {
		o.Type = types.RRTypeA
	}
	if o.TTL == 0 {
		o.TTL = 60
	}
	var changes []types.Change
	for i, c := range []release.Color{release.Blue, release.Green} {
		v := Addr[c]
		if o.Values[c] != "" {
			v = o.Values[c]
		} else if o.Type == types.RRTypeCname {
			v = string(c) + ".stack." + o.Zone
		}
		changes = append(changes, z.Upsert(z.Record, o.Type, string(c), int64(w[i]), o.TTL, v))
	}
	return z, z.Change(ctx, changes...)
}

// Upsert is the UPSERT of a weighted record (weight < 0: not weighted).
func (z *Zone) Upsert(name string, typ types.RRType, id string, weight, ttl int64, values ...string) types.Change {
	rs := &types.ResourceRecordSet{Name: aws.String(name), Type: typ, TTL: aws.Int64(ttl)}
	if id != "" {
		rs.SetIdentifier = aws.String(id)
	}
	if weight >= 0 {
		rs.Weight = aws.Int64(weight)
	}
	for _, v := range values {
		rs.ResourceRecords = append(rs.ResourceRecords, types.ResourceRecord{Value: aws.String(v)})
	}
	return types.Change{Action: types.ChangeActionUpsert, ResourceRecordSet: rs}
}

// Change sends changes in one batch.
func (z *Zone) Change(ctx context.Context, changes ...types.Change) error {
	_, err := z.api.ChangeResourceRecordSets(ctx, &route53.ChangeResourceRecordSetsInput{
		HostedZoneId: aws.String(z.ID), ChangeBatch: &types.ChangeBatch{Changes: changes},
	})
	if err != nil {
		return fmt.Errorf("change records of %s: %w", z.Name, err)
	}
	return nil
}

// SetWeight sets one color's weight (a hand edit).
func (z *Zone) SetWeight(ctx context.Context, c release.Color, weight int64) error {
	rs, err := z.Records(ctx)
	if err != nil {
		return err
	}
	for _, r := range rs {
		if aws.ToString(r.SetIdentifier) == string(c) {
			r.Weight = aws.Int64(weight)
			return z.Change(ctx, types.Change{Action: types.ChangeActionUpsert, ResourceRecordSet: &r})
		}
	}
	return fmt.Errorf("no %s record", c)
}

// Delete removes the record of color id (a hand edit).
func (z *Zone) Delete(ctx context.Context, id string) error {
	rs, err := z.Records(ctx)
	if err != nil {
		return err
	}
	for _, r := range rs {
		if aws.ToString(r.SetIdentifier) == id {
			return z.Change(ctx, types.Change{Action: types.ChangeActionDelete, ResourceRecordSet: &r})
		}
	}
	return fmt.Errorf("no %s record", id)
}

// Records are the zone's records named Record.
func (z *Zone) Records(ctx context.Context) ([]types.ResourceRecordSet, error) {
	out, err := z.api.ListResourceRecordSets(ctx, &route53.ListResourceRecordSetsInput{HostedZoneId: aws.String(z.ID)})
	if err != nil {
		return nil, err
	}
	var rs []types.ResourceRecordSet
	for _, r := range out.ResourceRecordSets {
		if strings.TrimSuffix(aws.ToString(r.Name), ".") == z.Record {
			rs = append(rs, r)
		}
	}
	return rs, nil
}

// Weights says "blue=100 green=0" (every weighted record, by identifier).
func (z *Zone) Weights(ctx context.Context) (string, error) {
	rs, err := z.Records(ctx)
	if err != nil {
		return "", err
	}
	var parts []string
	for _, r := range rs {
		if r.Weight != nil {
			parts = append(parts, fmt.Sprintf("%s=%d", aws.ToString(r.SetIdentifier), aws.ToInt64(r.Weight)))
		}
	}
	sort.Strings(parts)
	return strings.Join(parts, " "), nil
}

// Meta is the values of oops's TXT record, "" when there is none.
func (z *Zone) Meta(ctx context.Context) (string, error) {
	out, err := z.api.ListResourceRecordSets(ctx, &route53.ListResourceRecordSetsInput{HostedZoneId: aws.String(z.ID)})
	if err != nil {
		return "", err
	}
	for _, r := range out.ResourceRecordSets {
		if strings.TrimSuffix(aws.ToString(r.Name), ".") == "_oops."+z.Record && r.Type == types.RRTypeTxt {
			var vs []string
			for _, v := range r.ResourceRecords {
				vs = append(vs, aws.ToString(v.Value))
			}
			return strings.Join(vs, " "), nil
		}
	}
	return "", nil
}
