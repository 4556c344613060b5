package s3

// A lean reading of ListObjectsV2 pages.
//
// The SDK decodes a page of 1000 keys token by token with encoding/xml,
// about 8 µs a key: at 10,000 releases (artifacts and metadata, 20,000
// keys) that was most of oops list's CPU, more than the rest of the
// command. The four fields List uses are read here straight from the
// bytes of each <Contents> element, and the page goes on to the SDK
// without them, so that it still decodes everything else (truncation,
// continuation token, errors) itself. A page this reader does not
// understand goes to the SDK whole.

import (
	"bytes"
	"context"
	"errors"
	"html"
	"io"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/oops-deploy/oops/store"
)

// leanListing adds leanContents to a ListObjectsV2 call.
func leanListing(o *s3.Options) {
	o.APIOptions = append(o.APIOptions, func(stack *middleware.Stack) error {
		// After the operation's deserializer: it sees the body this
		// middleware leaves.
		return stack.Deserialize.Insert(leanContents{}, "OperationDeserializer", middleware.After)
	})
}

// leanKey is where leanContents leaves a page's objects in the result
// metadata.
type leanKey struct{}

// leanObjects returns the objects leanContents read from the page, or
// false when the SDK decoded them (out.Contents).
func leanObjects(out *s3.ListObjectsV2Output) ([]store.Object, bool) {
	objs, ok := out.ResultMetadata.Get(leanKey{}).([]store.Object)
	return objs, ok
}

type leanContents struct{}

func (leanContents) ID() string { return "OopsLeanListing" }

func (leanContents) HandleDeserialize(ctx context.Context, in middleware.DeserializeInput, next middleware.DeserializeHandler) (middleware.DeserializeOutput, middleware.Metadata, error) {
	out, md, err := next.HandleDeserialize(ctx, in)
	if err != nil {
		return out, md, err
	}
	resp, ok := out.RawResponse.(*smithyhttp.Response)
	if !ok || resp.StatusCode != 200 || resp.Body == nil {
		return out, md, err
	}
	data, err := store.ReadAll(resp.Body, resp.ContentLength)
	resp.Body.Close()
	if err != nil {
		return out, md, err
	}
	objs, rest, perr := parseContents(data)
	if perr != nil {
		resp.Body = io.NopCloser(bytes.NewReader(data))
		return out, md, nil
	}
	md.Set(leanKey{}, objs)
	resp.Body = io.NopCloser(bytes.NewReader(rest))
	return out, md, nil
}

var (
	openContents  = []byte("<Contents>")
	closeContents = []byte("</Contents>")
)

// parseContents reads Key, LastModified, ETag and Size of each <Contents>
// of a ListBucketResult, and returns the document without them.
func parseContents(data []byte) ([]store.Object, []byte, error) {
	var objs []store.Object
	rest := make([]byte, 0, 512)
	for {
		i := bytes.Index(data, openContents)
		if i < 0 {
			rest = append(rest, data...)
			return objs, rest, nil
		}
		rest = append(rest, data[:i]...)
		data = data[i+len(openContents):]
		j := bytes.Index(data, closeContents)
		if j < 0 {
			return nil, nil, errors.New("unterminated Contents")
		}
		el := data[:j]
		data = data[j+len(closeContents):]
		var o store.Object
		key, ok := field(el, "Key")
		if !ok {
			return nil, nil, errors.New("a Contents element without a Key")
		}
		o.Key = unescape(key)
		if etag, ok := field(el, "ETag"); ok {
			o.ETag = unescape(etag)
		}
		if mod, ok := field(el, "LastModified"); ok {
			t, err := time.Parse(time.RFC3339Nano, string(mod))
			if err != nil {
				return nil, nil, err
			}
			o.Modified = t.UTC()
		}
		if size, ok := field(el, "Size"); ok {
			n, err := strconv.ParseInt(string(size), 10, 64)
			if err != nil {
				return nil, nil, err
			}
			o.Size = n
		}
		objs = append(objs, o)
	}
}

// field is the text of the first <name>...</name> in el.
func field(el []byte, name string) ([]byte, bool) {
	open := "<" + name + ">"
	i := bytes.Index(el, []byte(open))
	if i < 0 {
		return nil, false
	}
	v := el[i+len(open):]
	j := bytes.Index(v, []byte("</"+name+">"))
	if j < 0 {
		return nil, false
	}
	return v[:j], true
}

// unescape decodes XML's character references (&amp;, &#34;, ...).
func unescape(b []byte) string {
	if bytes.IndexByte(b, '&') < 0 {
		return string(b)
	}
	// An ETag is "<hex>" with its quotes escaped (&#34; or &quot;, both
	// five bytes): the common case, fast.
	if n := len(b); n > 10 && isQuot(b[:5]) && isQuot(b[n-5:]) && bytes.IndexByte(b[5:n-5], '&') < 0 {
		return `"` + string(b[5:n-5]) + `"`
	}
	return html.UnescapeString(string(b))
}

func isQuot(b []byte) bool { return string(b) == "&#34;" || string(b) == "&quot;" }
