package s3

import (
	"testing"
	"time"
)

// TestParseContents: the lean reading of a page gives what the SDK's
// would, escaped keys and ETags included, and leaves the rest of the
// document (truncation, continuation token) for the SDK.
func TestParseContents(t *testing.T) {
	page := `<?xml version="1.0" encoding="UTF-8"?><ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>b</Name><IsTruncated>true</IsTruncated>` +
		`<Contents><Key>app/app-a&amp;b.zip</Key><LastModified>2026-12-01T03:00:00.123Z</LastModified><ETag>&quot;0123abcd0123abcd&quot;</ETag><Size>42</Size><StorageClass>STANDARD</StorageClass></Contents>` +
		`<Contents><Key>app/x</Key><LastModified>2026-12-01T03:00:01Z</LastModified><ETag>&#34;ffff0000ffff0000-2&#34;</ETag><Size>0</Size></Contents>` +
		`<Contents><Key>app/&lt;y&gt;</Key><ETag>"q&amp;"</ETag><Size>7</Size></Contents>` +
		`<NextContinuationToken>tok</NextContinuationToken></ListBucketResult>`
	objs, rest, err := parseContents([]byte(page))
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		key, etag string
		size      int64
		mod       time.Time
	}{
		{"app/app-a&b.zip", `"0123abcd0123abcd"`, 42, time.Date(2026, 12, 1, 3, 0, 0, 123e6, time.UTC)},
		{"app/x", `"ffff0000ffff0000-2"`, 0, time.Date(2026, 12, 1, 3, 0, 1, 0, time.UTC)},
		{"app/<y>", `"q&"`, 7, time.Time{}},
	}
	if len(objs) != len(want) {
		t.Fatalf("read %d objects: %+v", len(objs), objs)
	}
	for i, w := range want {
		if o := objs[i]; o.Key != w.key || o.ETag != w.etag || o.Size != w.size || !o.Modified.Equal(w.mod) {
			t.Errorf("object %d = %+v, want %+v", i, o, w)
		}
	}
	wantRest := `<?xml version="1.0" encoding="UTF-8"?><ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>b</Name><IsTruncated>true</IsTruncated><NextContinuationToken>tok</NextContinuationToken></ListBucketResult>`
	if string(rest) != wantRest {
		t.Errorf("rest = %s", rest)
	}
	for _, bad := range []string{`<Contents><Key>k</Key>`, `<Contents><Size>1</Size></Contents>`, `<Contents><Key>k</Key><Size>x</Size></Contents>`} {
		if _, _, err := parseContents([]byte(bad)); err == nil {
			t.Errorf("parseContents(%s): no error; the SDK must read a page this cannot", bad)
		}
	}
}
