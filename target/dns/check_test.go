package dns

import (
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/route53/types"

	"github.com/oops-deploy/oops/release"
)

// FuzzCheck feeds hand-edited record sets (every mix of types, set
// identifiers, weights and routing policies) to the check that reads them:
// it never panics, and a record set it finds sound is one oops can switch:
// both colors of every type, one pair of weights, not both 0, percentages
// that add up to 100 with the live color's the larger.
func FuzzCheck(f *testing.F) {
	f.Add([]byte{0, 0, 100, 0, 1, 0}) // A blue 100, A green 0
	f.Add([]byte{0, 0, 0, 0, 1, 0})   // both 0
	f.Add([]byte{0, 0, 90, 0, 1, 10, 1, 0, 90, 1, 1, 10})
	f.Add([]byte{0, 0, 1, 0, 1, 199})          // rounding at .5
	f.Add([]byte{2, 0, 100, 2, 1, 0, 0, 2, 5}) // CNAME, a third record
	f.Add([]byte{0, 0, 255, 0, 1, 255, 0, 3, 0xff})
	tg, err := New(nil, Config{DNSName: "api.example.com"})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		typesOf := []types.RRType{types.RRTypeA, types.RRTypeAaaa, types.RRTypeCname, types.RRTypeMx}
		ids := []string{"blue", "green", "canary", "Blue", ""}
		var sets []types.ResourceRecordSet
		for i := 0; i+2 < len(data) && len(sets) < 8; i += 3 {
			rs := types.ResourceRecordSet{Name: aws.String("api.example.com."), Type: typesOf[int(data[i])%len(typesOf)], TTL: aws.Int64(60),
				ResourceRecords: []types.ResourceRecord{{Value: aws.String("10.0.0.1")}}}
			if id := ids[int(data[i+1])%len(ids)]; id != "" {
				rs.SetIdentifier = aws.String(id)
			}
			if data[i+2] != 0xff { // 0xff: not weighted (another policy)
				rs.Weight = aws.Int64(int64(data[i+2]))
			}
			sets = append(sets, rs)
		}
		s := &snapshot{zone: "Z1"}
		s.meta, _ = parseMeta(nil)
		s.check(tg, sets)
		st := s.state
		if st == nil {
			t.Fatal("no state")
		}
		if s.problem != nil {
			return
		}
		if len(s.pairs) == 0 {
			t.Fatal("sound without records")
		}
		for _, p := range s.pairs {
			for _, c := range []release.Color{release.Blue, release.Green} {
				if p.recs[c] == nil || p.recs[c].weight != s.weights[map[release.Color]int{release.Blue: 0, release.Green: 1}[c]] {
					t.Fatalf("sound, yet %s %s is missing or has other weights: %+v", p.typ, c, s.weights)
				}
			}
		}
		if s.weights == [2]int{0, 0} {
			t.Fatal("sound with both weights 0")
		}
		if st.Live.Weight+st.Off.Weight != 100 || st.Live.Weight < st.Off.Weight {
			t.Fatalf("percentages live %d off %d", st.Live.Weight, st.Off.Weight)
		}
		if (st.Base != "") != (s.weights[0] > 0 && s.weights[1] > 0) {
			t.Fatalf("base %q with weights %v", st.Base, s.weights)
		}
	})
}
