package store

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/oops-deploy/oops/release"
)

// FuzzDecodeSnapshot: index.json may be anything someone with write
// access to the bucket put there. decodeSnapshot (segmentio's decoder, for
// speed) must answer as encoding/json does: the same snapshot when it
// decodes, an error (read around as a corrupt index) when it does not, and
// never a panic.
func FuzzDecodeSnapshot(f *testing.F) {
	good, _ := json.Marshal(indexFile{Version: 1, Releases: map[string]release.Release{
		"0123456789abcdef0123456789abcdef01234567": {Commit: "0123456789abcdef0123456789abcdef01234567", App: "app", Key: "app/app-0123456789abcdef0123456789abcdef01234567.zip",
			Size: 3, Published: time.Date(2024, 1, 2, 3, 4, 5, 6, time.UTC), Author: "Ada", Subject: "fix \u00e9\n", Tags: []string{"v1"}, Dirty: true},
	}, MetaETags: map[string]string{"0123456789abcdef0123456789abcdef01234567": `"abc"`}})
	for _, s := range []string{string(good), `{}`, `null`, `{"version":1,"releases":null}`, `{"releases":{"a":{"published":"not a time"}}}`,
		`{"releases":{"a":{"size":1e400}}}`, `{"releases":{"a":{"commit":"\ud800"}}}`, `{"releases":[]}`, `{"version":1}x`, `{"releases":{"a":{}, "a":{"size":2}}}`,
		`{"Releases":{"a":{"Size":2}}}`, `{"releases":{"a":{"tags":"x"}}}`, `{"format":2,"artifact_etags":{"a":"b"},"bare":{"a":"c@1"},"adopted":{"a":"d"}}`, `{"FORMAT":2.5}`, "{\"releases\":{\"a\":{\"author\":\"\xff\"}}}"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, raw := range []bool{false, true} {
			got, err := decodeSnapshot(data, raw)
			var want snapshot
			var werr error
			if raw {
				var f rawSnapshot
				werr = json.Unmarshal(data, &f)
				want = snapshot{raw: f.Releases, metaETags: f.MetaETags, refs: f.snapshotRefs}
			} else {
				var f indexFile
				werr = json.Unmarshal(data, &f)
				want = snapshot{decoded: f.Releases, metaETags: f.MetaETags, refs: f.snapshotRefs}
			}
			if (err == nil) != (werr == nil) {
				t.Fatalf("raw %v: decodeSnapshot error %v, encoding/json error %v", raw, err, werr)
			}
			if err == nil && !reflect.DeepEqual(*got, want) {
				t.Fatalf("raw %v: decodeSnapshot\n %+v\nencoding/json\n %+v", raw, *got, want)
			}
		}
	})
}

// FuzzIsRef: isRef answers as comparing with bareRef does.
func FuzzIsRef(f *testing.F) {
	f.Add(`"abc"@1700000000000000000`, `"abc"`, int64(1700000000000000000))
	f.Add(`"abc"@17`, `"abc"`, int64(1700000000000000000))
	f.Add(`"abc"`, `"abc"`, int64(0))
	f.Add(``, ``, int64(-1))
	f.Fuzz(func(t *testing.T, ref, etag string, ns int64) {
		o := Object{ETag: etag, Modified: time.Unix(0, ns)}
		if got, want := isRef(ref, o), ref == bareRef(o); got != want {
			t.Fatalf("isRef(%q, %q@%d) = %v, want %v", ref, etag, ns, got, want)
		}
		if !isRef(bareRef(o), o) {
			t.Fatalf("isRef(bareRef(o), o) false for %q@%d", etag, ns)
		}
	})
}
