package local

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// A small HTTP/1.1 message layer for the proxy's data path: it reads a
// message head once into a reusable buffer, keeps the headers as offsets
// into it, and writes a cleaned-up head on the other side. Bodies are
// copied as they arrive. This is what lets the proxy forward a request for
// a few allocations instead of net/http's dozens (see bench/proxy).

// Limits on message heads (nginx's defaults are in the same range).
const (
	maxHeadBytes = 64 << 10
	maxHeaders   = 200
)

// maxChunkLine bounds a chunk-size line, extensions included (as Go's
// net/http does): extensions are not forwarded, so only an attacker needs more.
const maxChunkLine = 4 << 10

var (
	errHeadTooLarge  = errors.New("message head too large")
	errURITooLong    = errors.New("request line too long")
	errBadMessage    = errors.New("malformed HTTP message")
	errUnsupportedTE = errors.New("unsupported transfer encoding")
	errVersion       = errors.New("unsupported HTTP version")
	errMethod        = errors.New("unsupported method")
)

// span is a [start, end) range in head.buf.
type span struct{ s, e int32 }

type field struct{ name, value span }

// head is one parsed request or response head. Reused across messages of
// a connection: reset clears it without freeing its buffers.
type head struct {
	buf    []byte
	fields []field

	// Request line. target is in origin form (or "*", or CONNECT's
	// authority); authority is the host of an absolute-form target, which
	// replaces the Host header (RFC 9112, 3.2.2).
	method, target, authority span
	// Status line.
	status int
	reason span
	// minor is the x of HTTP/1.x.
	minor int

	contentLength  int64 // -1: none
	chunked        bool
	connClose      bool
	connKeepAlive  bool
	connUpgrade    bool
	expectContinue bool
	hasHost        bool
	upgrade        span
	// connTokens are the other header names listed in Connection: hop-by-hop.
	connTokens []span
}

func (h *head) reset() {
	h.buf = h.buf[:0]
	h.fields = h.fields[:0]
	h.connTokens = h.connTokens[:0]
	h.method, h.target, h.authority, h.reason, h.upgrade = span{}, span{}, span{}, span{}, span{}
	h.status, h.minor = 0, 0
	h.contentLength = -1
	h.chunked, h.connClose, h.connKeepAlive, h.connUpgrade, h.expectContinue, h.hasHost = false, false, false, false, false, false
}

func (h *head) get(s span) []byte { return h.buf[s.s:s.e] }

// add copies b into the buffer and returns where it is.
func (h *head) add(b []byte) span {
	s := int32(len(h.buf))
	h.buf = append(h.buf, b...)
	return span{s, int32(len(h.buf))}
}

// readLine returns the next line without its CRLF (or bare LF). The slice
// is only valid until the next read from br.
func readLine(br *bufio.Reader) ([]byte, error) {
	line, err := br.ReadSlice('\n')
	if err != nil {
		if errors.Is(err, bufio.ErrBufferFull) {
			return nil, errHeadTooLarge
		}
		if errors.Is(err, io.EOF) && len(line) > 0 {
			return nil, io.ErrUnexpectedEOF
		}
		return nil, err
	}
	line = line[:len(line)-1]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line, nil
}

// readRequest reads a request head. io.EOF means the client closed the
// connection cleanly between requests.
func (h *head) readRequest(br *bufio.Reader) error {
	h.reset()
	var line []byte
	var err error
	// A client may send empty lines before a request (RFC 9112, 2.2).
	for range 4 {
		if line, err = readLine(br); err != nil || len(line) > 0 {
			break
		}
	}
	if err != nil {
		if errors.Is(err, errHeadTooLarge) {
			return errURITooLong // the line did not fit in the buffer
		}
		return err
	}
	m := bytes.IndexByte(line, ' ')
	t := bytes.LastIndexByte(line, ' ')
	if m <= 0 || t <= m+1 || !isToken(line[:m]) {
		return errBadMessage
	}
	minor, err := requestVersion(line[t+1:])
	if err != nil {
		return err
	}
	method, target := line[:m], line[m+1:t]
	if !upperMethod(method) {
		return errMethod
	}
	if !visible(target) {
		return errBadMessage
	}
	h.minor = minor
	h.method = h.add(method)
	if err := h.setTarget(method, target); err != nil {
		return err
	}
	if err := h.readFields(br, true); err != nil {
		return err
	}
	if h.minor >= 1 && !h.hasHost {
		return errBadMessage
	}
	return nil
}

// readResponse reads a response head from the app.
func (h *head) readResponse(br *bufio.Reader) error {
	h.reset()
	line, err := readLine(br)
	if err != nil {
		return err
	}
	// HTTP/1.1 200 OK
	if len(line) < 12 || line[8] != ' ' {
		return errBadMessage
	}
	minor, ok := parseVersion(line[:8])
	if !ok {
		return errBadMessage
	}
	status, err := strconv.Atoi(string(line[9:12]))
	if err != nil || status < 100 || status > 999 || (len(line) > 12 && line[12] != ' ') {
		return errBadMessage
	}
	// A control byte in the reason phrase, as in a header, could end the
	// line for the client and split the response.
	if !fieldValue(line[min(len(line), 13):]) {
		return errBadMessage
	}
	h.minor, h.status = minor, status
	if len(line) > 13 {
		h.reason = h.add(line[13:])
	}
	return h.readFields(br, false)
}

// requestVersion parses a request's HTTP-version: HTTP/1.0 and HTTP/1.1
// are served, any other well-formed one is errVersion (505).
func requestVersion(v []byte) (minor int, err error) {
	if len(v) != 8 || string(v[:5]) != "HTTP/" || !isDigit(v[5]) || v[6] != '.' || !isDigit(v[7]) {
		return 0, errBadMessage
	}
	if v[5] != '1' || v[7] > '1' {
		return 0, errVersion
	}
	return int(v[7] - '0'), nil
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// upperMethod reports whether a method is one the proxy forwards: upper
// case letters, digits, '-' and '_', as every registered method is.
// Methods are case-sensitive (RFC 9110, 9.1), so "get" is not GET but an
// unknown method that apps would each treat their own way: refused (501).
func upperMethod(m []byte) bool {
	for _, c := range m {
		if !('A' <= c && c <= 'Z' || isDigit(c) || c == '-' || c == '_') {
			return false
		}
	}
	return len(m) > 0
}

// setTarget records the request target. An absolute-form target
// (http://host/path?q, as sent to proxies) becomes origin form (/path?q)
// and its authority the Host the app sees (RFC 9112, 3.2.2), so the app,
// X-Forwarded-Host and the client agree on the host.
func (h *head) setTarget(method, target []byte) error {
	switch {
	case target[0] == '/':
		h.target = h.add(target)
		return nil
	case string(target) == "*":
		if string(method) != "OPTIONS" {
			return errBadMessage
		}
		h.target = h.add(target)
		return nil
	case string(method) == "CONNECT":
		h.target = h.add(target) // authority-form: refused by forward
		return nil
	}
	scheme, rest, ok := bytes.Cut(target, []byte("://"))
	if !ok || !(bytes.EqualFold(scheme, []byte("http")) || bytes.EqualFold(scheme, []byte("https"))) {
		return errBadMessage
	}
	end := bytes.IndexAny(rest, "/?")
	if end < 0 {
		end = len(rest)
	}
	authority, path := rest[:end], rest[end:]
	// A userinfo part (user:pw@host) is refused: '@' is not allowed.
	if !validAuthority(authority) {
		return errBadMessage
	}
	h.authority = h.add(authority)
	switch {
	case len(path) == 0 && string(method) == "OPTIONS":
		h.target = h.add([]byte("*")) // RFC 9112, 3.2.4
	case len(path) == 0 || path[0] == '?':
		s := int32(len(h.buf))
		h.buf = append(h.buf, '/')
		h.buf = append(h.buf, path...)
		h.target = span{s, int32(len(h.buf))}
	default:
		h.target = h.add(path)
	}
	return nil
}

var authorityChars = func() (t [256]bool) {
	for c := range 256 {
		t[c] = tokenChars[c]
	}
	for _, c := range "!$&'()*+,;=:[]%-._~" {
		t[c] = true
	}
	for _, c := range "#^`|" { // token characters a host never has
		t[c] = false
	}
	return t
}()

// validAuthority reports whether b is a host[:port] fit for a Host header:
// not empty, and no userinfo.
func validAuthority(b []byte) bool {
	for _, c := range b {
		if !authorityChars[c] {
			return false
		}
	}
	return len(b) > 0
}

func parseVersion(v []byte) (minor int, ok bool) {
	if len(v) != 8 || string(v[:7]) != "HTTP/1." || v[7] < '0' || v[7] > '9' {
		return 0, false
	}
	return int(v[7] - '0'), true
}

func (h *head) readFields(br *bufio.Reader, request bool) error {
	size := len(h.buf)
	for {
		line, err := readLine(br)
		if err != nil {
			if errors.Is(err, io.EOF) {
				return io.ErrUnexpectedEOF
			}
			return err
		}
		if len(line) == 0 {
			break
		}
		size += len(line) + 2
		if size > maxHeadBytes || len(h.fields) >= maxHeaders {
			return errHeadTooLarge
		}
		name, value, ok := splitField(line)
		if !ok {
			return errBadMessage
		}
		f := field{name: h.add(name), value: h.add(value)}
		h.fields = append(h.fields, f)
		if err := h.note(f, request); err != nil {
			return err
		}
	}
	// A request framed two ways, or chunked in HTTP/1.0, which has no
	// Transfer-Encoding, may have been framed the other way by a proxy in
	// front: refused (RFC 9112, 6.1 and 6.3).
	if request && h.chunked && (h.contentLength >= 0 || h.minor == 0) {
		return errBadMessage
	}
	if h.chunked && h.contentLength >= 0 {
		// A response's chunked framing wins, but both hint at an injected
		// header: the app's connection is not used again (RFC 9112, 6.3).
		h.contentLength, h.connClose = -1, true
	}
	return nil
}

// splitField splits a header or trailer line into its name and value, or
// reports that it is malformed.
func splitField(line []byte) (name, value []byte, ok bool) {
	// Obsolete line folding and a space before the colon are how
	// requests get smuggled past proxies: refuse both.
	if line[0] == ' ' || line[0] == '\t' {
		return nil, nil, false
	}
	colon := bytes.IndexByte(line, ':')
	if colon <= 0 || !isToken(line[:colon]) {
		return nil, nil, false
	}
	value = bytes.Trim(line[colon+1:], " \t")
	// A bare CR or other control byte in a value is read as a line
	// end by some servers: another way to smuggle a header in.
	if !fieldValue(value) {
		return nil, nil, false
	}
	return line[:colon], value, true
}

// note records what the proxy itself needs from a header.
func (h *head) note(f field, request bool) error {
	name, value := h.get(f.name), h.get(f.value)
	switch len(name) {
	case 4:
		if request && bytes.EqualFold(name, []byte("host")) {
			// One Host, a host[:port] or empty (RFC 9112, 3.2): the app
			// also gets it as X-Forwarded-Host.
			if h.hasHost || len(value) > 0 && !validAuthority(value) {
				return errBadMessage
			}
			h.hasHost = true
		}
	case 6:
		// Not in HTTP/1.0 (RFC 9110, 10.1.1): its apps send no 100.
		if request && h.minor >= 1 && bytes.EqualFold(name, []byte("expect")) && bytes.EqualFold(value, []byte("100-continue")) {
			h.expectContinue = true
		}
	case 7:
		if bytes.EqualFold(name, []byte("upgrade")) {
			h.upgrade = f.value
		}
	case 10:
		if bytes.EqualFold(name, []byte("connection")) {
			for tok := range bytes.SplitSeq(value, []byte(",")) {
				tok = bytes.Trim(tok, " \t")
				switch {
				case len(tok) == 0:
				case bytes.EqualFold(tok, []byte("close")):
					h.connClose = true
				case bytes.EqualFold(tok, []byte("keep-alive")):
					h.connKeepAlive = true
				case bytes.EqualFold(tok, []byte("upgrade")):
					h.connUpgrade = true
				default:
					h.connTokens = append(h.connTokens, h.add(tok))
				}
			}
		}
	case 14:
		if bytes.EqualFold(name, []byte("content-length")) {
			n, err := strconv.ParseInt(string(value), 10, 64)
			if err != nil || n < 0 || (value[0] < '0' || value[0] > '9') {
				return errBadMessage
			}
			if h.contentLength >= 0 && h.contentLength != n {
				return errBadMessage
			}
			h.contentLength = n
		} else if request && underscoreAlias(name, "content-length") {
			return errBadMessage
		}
	case 17:
		if bytes.EqualFold(name, []byte("transfer-encoding")) {
			if h.chunked || !bytes.EqualFold(value, []byte("chunked")) {
				return errUnsupportedTE
			}
			h.chunked = true
		} else if request && underscoreAlias(name, "transfer-encoding") {
			return errBadMessage
		}
	}
	return nil
}

// underscoreAlias reports whether name is the lower-case name spelled
// with '_' for some '-' (Content_Length). CGI-style apps (WSGI, PHP, Rack)
// see both as one variable, so such a framing field would frame the body
// for the app, and not for the proxy.
func underscoreAlias(name []byte, lower string) bool {
	if len(name) != len(lower) || bytes.IndexByte(name, '_') < 0 {
		return false
	}
	for i, c := range name {
		switch {
		case c == '_':
			c = '-'
		case 'A' <= c && c <= 'Z':
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}

// hopByHop reports whether a header is for one connection only and must
// not be forwarded (RFC 9110, 7.6.1), or is one the proxy writes itself.
// Trailer is not one: it goes with a message forwarded chunked.
func (h *head) hopByHop(name []byte) bool {
	hop := false
	switch len(name) {
	case 2:
		hop = bytes.EqualFold(name, []byte("te"))
	case 7:
		hop = bytes.EqualFold(name, []byte("upgrade"))
	case 10:
		hop = bytes.EqualFold(name, []byte("connection")) || bytes.EqualFold(name, []byte("keep-alive"))
	case 14:
		hop = bytes.EqualFold(name, []byte("content-length"))
	case 16:
		hop = bytes.EqualFold(name, []byte("proxy-connection"))
	case 17:
		hop = bytes.EqualFold(name, []byte("transfer-encoding"))
	}
	if hop {
		return true
	}
	// Any name, of any length, listed in Connection.
	for _, t := range h.connTokens {
		if bytes.EqualFold(name, h.get(t)) {
			return true
		}
	}
	return false
}

func isTrailerHeader(name []byte) bool {
	return len(name) == 7 && bytes.EqualFold(name, []byte("trailer"))
}

// trailerAllowed reports whether a trailer field of message h may be
// forwarded. Trailers are validated like headers and the valid ones kept
// (checksums, Server-Timing, grpc-status), but never the fields a trailer
// must not carry (RFC 9110, 6.5.1): framing, routing, request modifiers,
// authentication, response control, content metadata, hop-by-hop ones, and
// those the proxy writes itself. Those are dropped, not refused, as an app
// may send them without harm in mind.
func (h *head) trailerAllowed(name []byte) bool {
	if h.hopByHop(name) {
		return false
	}
	var lower [24]byte
	if len(name) > len(lower) {
		return true // longer than any name below
	}
	for i, c := range name {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		lower[i] = c
	}
	switch string(lower[:len(name)]) {
	case "trailer", "host", "cache-control", "expect", "max-forwards", "pragma", "range",
		"if-match", "if-none-match", "if-modified-since", "if-unmodified-since", "if-range",
		"authorization", "proxy-authorization", "www-authenticate", "proxy-authenticate", "cookie", "set-cookie",
		"age", "date", "expires", "location", "retry-after", "vary", "warning",
		"content-encoding", "content-type", "content-range",
		"forwarded", "x-forwarded-for", "x-forwarded-host", "x-forwarded-proto", "x-oops-color":
		return false
	}
	return true
}

// Forwarding headers, as forwardedHeader tells them apart.
const (
	fwdNone = iota
	fwdFor
	fwdHost
	fwdProto
	fwdRFC7239 // Forwarded
	// fwdOther are the other headers apps and frameworks read the client's
	// address or scheme from (Rack reads X-Forwarded-Ssl and -Scheme,
	// nginx setups send X-Real-IP): kept from a trusted peer, dropped from
	// any other, which could claim https or another address with them.
	fwdOther
)

func forwardedHeader(name []byte) int {
	switch len(name) {
	case 9:
		if bytes.EqualFold(name, []byte("forwarded")) {
			return fwdRFC7239
		}
		if bytes.EqualFold(name, []byte("x-real-ip")) {
			return fwdOther
		}
	case 11:
		if bytes.EqualFold(name, []byte("x-client-ip")) {
			return fwdOther
		}
	case 12:
		if bytes.EqualFold(name, []byte("x-url-scheme")) {
			return fwdOther
		}
	case 15:
		if bytes.EqualFold(name, []byte("x-forwarded-for")) {
			return fwdFor
		}
		if bytes.EqualFold(name, []byte("x-forwarded-ssl")) || bytes.EqualFold(name, []byte("front-end-https")) {
			return fwdOther
		}
	case 16:
		if bytes.EqualFold(name, []byte("x-forwarded-host")) {
			return fwdHost
		}
		if bytes.EqualFold(name, []byte("x-forwarded-port")) {
			return fwdOther
		}
	case 17:
		if bytes.EqualFold(name, []byte("x-forwarded-proto")) {
			return fwdProto
		}
	case 18:
		if bytes.EqualFold(name, []byte("x-forwarded-scheme")) {
			return fwdOther
		}
	}
	return fwdNone
}

// forwardedSpelling reports whether name, with '_' read as '-', is a
// forwarding header.
func forwardedSpelling(name []byte) bool {
	if len(name) > 18 {
		return false
	}
	var b [18]byte
	n := copy(b[:], name)
	for i := range n {
		if b[i] == '_' {
			b[i] = '-'
		}
	}
	return forwardedHeader(b[:n]) != fwdNone
}

var tokenChars = func() (t [256]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c], t[c-'a'+'A'] = true, true
	}
	for _, c := range "!#$%&'*+-.^_`|~" {
		t[c] = true
	}
	return t
}()

// visible reports whether b is all visible ASCII (a request target).
func visible(b []byte) bool {
	for _, c := range b {
		if c <= ' ' || c >= 0x7f {
			return false
		}
	}
	return len(b) > 0
}

// fieldValue reports whether b may be a header value: no control bytes
// but tab (bytes above 0x7f are allowed, as obs-text).
func fieldValue(b []byte) bool {
	for _, c := range b {
		if (c < ' ' && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}

func isToken(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if !tokenChars[c] {
			return false
		}
	}
	return true
}

// appendRequestHead writes the request to send to the app: the request
// line as HTTP/1.1, the end-to-end headers, the framing of the body, the
// forwarding headers and, for an upgrade, Connection/Upgrade.
//
// From a trusted peer (a TLS terminator) X-Forwarded-Proto and -Host are
// kept as sent, X-Forwarded-For and Forwarded get the peer appended; what
// is missing is filled in with what the proxy saw. From any other peer all
// four are dropped and replaced with what the proxy saw (no Forwarded is
// written then: apps read it only behind proxies that send it).
func appendRequestHead(dst []byte, h *head, clientIP, appHost string, trusted bool) []byte {
	dst = append(dst, h.get(h.method)...)
	dst = append(dst, ' ')
	dst = append(dst, h.get(h.target)...)
	dst = append(dst, " HTTP/1.1\r\n"...)
	var xff, fwd, host []byte
	var hasProto, hasHost bool
	for _, f := range h.fields {
		name := h.get(f.name)
		k := forwardedHeader(name)
		switch {
		case k != fwdNone && !trusted:
			continue
		case k == fwdNone && bytes.IndexByte(name, '_') >= 0 && forwardedSpelling(name):
			// CGI, WSGI, PHP and Rack read X_Forwarded_Proto as
			// X-Forwarded-Proto: from anyone, a way around the rules.
			continue
		case k != fwdNone && h.hopByHop(name):
			// Named in Connection: for the trusted peer's hop only.
			continue
		case k == fwdFor:
			xff = appendList(xff, h.get(f.value))
			continue
		case k == fwdRFC7239:
			fwd = appendList(fwd, h.get(f.value))
			continue
		}
		value := h.get(f.value)
		if len(name) == 4 && bytes.EqualFold(name, []byte("host")) {
			if h.authority.e > h.authority.s {
				value = h.get(h.authority)
			}
			// Kept even if Connection names it: the app needs a Host.
			host = value
			dst = appendField(dst, name, value)
			continue
		}
		if h.hopByHop(name) || (!h.chunked && isTrailerHeader(name)) {
			continue
		}
		hasHost = hasHost || k == fwdHost
		hasProto = hasProto || k == fwdProto
		dst = appendField(dst, name, value)
	}
	if host == nil {
		// An HTTP/1.0 client may send none; HTTP/1.1 to the app needs one.
		if h.authority.e > h.authority.s {
			host = h.get(h.authority)
		} else {
			host = []byte(appHost)
		}
		dst = appendField(dst, []byte("Host"), host)
	}
	dst = append(dst, "X-Forwarded-For: "...)
	if xff != nil {
		dst = append(dst, xff...)
		dst = append(dst, ", "...)
	}
	dst = append(dst, clientIP...)
	dst = append(dst, "\r\n"...)
	if !hasHost {
		dst = appendField(dst, []byte("X-Forwarded-Host"), host)
	}
	if !hasProto {
		dst = append(dst, "X-Forwarded-Proto: http\r\n"...)
	}
	if fwd != nil {
		// RFC 7239: this hop's element, after the ones before it.
		dst = append(dst, "Forwarded: "...)
		dst = append(dst, fwd...)
		dst = append(dst, ", for="...)
		if strings.IndexByte(clientIP, ':') >= 0 {
			dst = append(dst, `"[`...)
			dst = append(dst, clientIP...)
			dst = append(dst, `]"`...)
		} else {
			dst = append(dst, clientIP...)
		}
		dst = append(dst, ";host="...)
		dst = appendTokenOrQuoted(dst, host)
		dst = append(dst, ";proto=http\r\n"...)
	}
	switch {
	case h.chunked:
		dst = append(dst, "Transfer-Encoding: chunked\r\n"...)
	case h.contentLength >= 0:
		dst = append(dst, "Content-Length: "...)
		dst = strconv.AppendInt(dst, h.contentLength, 10)
		dst = append(dst, "\r\n"...)
	}
	if h.wantsUpgrade() {
		dst = append(dst, "Connection: Upgrade\r\n"...)
		dst = appendField(dst, []byte("Upgrade"), h.get(h.upgrade))
	}
	return append(dst, "\r\n"...)
}

// appendList adds v to a comma-separated list (several header lines of
// one name are one list).
func appendList(list, v []byte) []byte {
	if list != nil {
		list = append(list, ", "...)
	}
	return append(list, v...)
}

// appendTokenOrQuoted writes v as an RFC 7239 value: a token as is, else
// a quoted string.
func appendTokenOrQuoted(dst, v []byte) []byte {
	if isToken(v) {
		return append(dst, v...)
	}
	dst = append(dst, '"')
	for _, c := range v {
		if c == '"' || c == '\\' {
			dst = append(dst, '\\')
		}
		dst = append(dst, c)
	}
	return append(dst, '"')
}

// hasBody reports whether request h has a body to read (RFC 9112, 6.3).
func (h *head) hasBody() bool { return h.chunked || h.contentLength > 0 }

// wantsUpgrade reports whether request h asks to switch protocols. Not in
// HTTP/1.0 (RFC 9110, 7.8): a proxy in front would not expect a tunnel.
func (h *head) wantsUpgrade() bool { return h.minor >= 1 && h.connUpgrade && h.upgrade.e > h.upgrade.s }

// appendResponseHead writes the response for the client: the app's status
// and end-to-end headers, X-Oops-Color, and the framing chosen by the
// caller (contentLength >= 0, chunked, or neither: no body or until close).
func appendResponseHead(dst []byte, h *head, color string, contentLength int64, chunked, closing, upgrade bool) []byte {
	dst = append(dst, "HTTP/1.1 "...)
	dst = strconv.AppendInt(dst, int64(h.status), 10)
	dst = append(dst, ' ')
	dst = append(dst, h.get(h.reason)...)
	dst = append(dst, "\r\n"...)
	for _, f := range h.fields {
		name := h.get(f.name)
		if h.hopByHop(name) || (!chunked && isTrailerHeader(name)) {
			continue
		}
		dst = appendField(dst, name, h.get(f.value))
	}
	dst = append(dst, "X-Oops-Color: "...)
	dst = append(dst, color...)
	dst = append(dst, "\r\n"...)
	switch {
	case upgrade:
		dst = append(dst, "Connection: Upgrade\r\n"...)
		dst = appendField(dst, []byte("Upgrade"), h.get(h.upgrade))
	case contentLength >= 0:
		dst = append(dst, "Content-Length: "...)
		dst = strconv.AppendInt(dst, contentLength, 10)
		dst = append(dst, "\r\n"...)
	case chunked:
		dst = append(dst, "Transfer-Encoding: chunked\r\n"...)
	}
	if closing && !upgrade {
		dst = append(dst, "Connection: close\r\n"...)
	}
	return append(dst, "\r\n"...)
}

func appendField(dst, name, value []byte) []byte {
	dst = append(dst, name...)
	dst = append(dst, ": "...)
	dst = append(dst, value...)
	return append(dst, "\r\n"...)
}

// copyBody copies n bytes (n < 0: until EOF) from src to dst. Before it
// would wait for more input it flushes what it has, so streamed responses
// reach the client as the app writes them, while bulk transfers still go
// out in full buffers.
func copyBody(dst *bufio.Writer, src *bufio.Reader, n int64, buf []byte) error {
	for n != 0 {
		if src.Buffered() == 0 && dst.Buffered() > 0 {
			if err := dst.Flush(); err != nil {
				return err
			}
		}
		p := buf
		if n > 0 && int64(len(p)) > n {
			p = p[:n]
		}
		k, err := src.Read(p)
		if k > 0 {
			if _, werr := dst.Write(p[:k]); werr != nil {
				return werr
			}
			if n > 0 {
				n -= int64(k)
			}
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				if n < 0 {
					return nil
				}
				return io.ErrUnexpectedEOF
			}
			return err
		}
	}
	return nil
}

// copyChunked copies a chunked body of message h, re-chunked as read
// (dechunk: only its data, for HTTP/1.0 clients), without chunk
// extensions, with its allowed trailers (none when dechunking). A framing
// fault of src's is an error wrapping errBadMessage.
func copyChunked(dst *bufio.Writer, src *bufio.Reader, h *head, dechunk bool, buf []byte) error {
	for {
		if src.Buffered() == 0 && dst.Buffered() > 0 {
			if err := dst.Flush(); err != nil {
				return err
			}
		}
		line, err := readChunkLine(src)
		if err != nil {
			return err
		}
		size, err := chunkSize(line)
		if err != nil {
			return err
		}
		if !dechunk {
			writeHex(dst, size)
			dst.WriteString("\r\n")
		}
		if size == 0 {
			return copyTrailers(dst, src, h, dechunk)
		}
		if err := copyBody(dst, src, size, buf); err != nil {
			return err
		}
		// Exactly CRLF: a bare LF here is where parsers disagree.
		crlf, err := src.Peek(2)
		if err != nil {
			return chunkReadErr(err)
		}
		if crlf[0] != '\r' || crlf[1] != '\n' {
			return fmt.Errorf("%w: chunk not followed by CRLF", errBadMessage)
		}
		_, _ = src.Discard(2)
		if !dechunk {
			dst.WriteString("\r\n")
		}
	}
}

// readChunkLine is readLine for the lines of a chunked body (sizes,
// trailers, the end), which must end in CRLF: unlike in a head (RFC 9112,
// 2.2), a bare LF there is not a line end to every parser, and a body
// read two ways is how a request gets hidden in another (Go's
// CVE-2025-22871). A CR elsewhere is refused by the callers' checks.
func readChunkLine(br *bufio.Reader) ([]byte, error) {
	line, err := br.ReadSlice('\n')
	if err != nil {
		return nil, chunkReadErr(err)
	}
	if n := len(line); n < 2 || line[n-2] != '\r' {
		return nil, fmt.Errorf("%w: line of a chunked body ends in a bare LF", errBadMessage)
	}
	return line[:len(line)-2], nil
}

func chunkReadErr(err error) error {
	switch {
	case errors.Is(err, bufio.ErrBufferFull):
		return fmt.Errorf("%w: line of a chunked body too long", errBadMessage)
	case errors.Is(err, io.EOF):
		return io.ErrUnexpectedEOF
	}
	return err
}

// chunkSize parses a chunk-size line: hex digits, then optional
// extensions (RFC 9112, 7.1.1), which are checked for control bytes but
// not forwarded. No sign, no leading space, at most 15 digits (1 EiB).
func chunkSize(line []byte) (int64, error) {
	if len(line) > maxChunkLine {
		return 0, fmt.Errorf("%w: chunk size line too long", errBadMessage)
	}
	var n int64
	i := 0
	for ; i < len(line); i++ {
		d, ok := hexDigit(line[i])
		if !ok {
			break
		}
		if i == 15 {
			return 0, fmt.Errorf("%w: chunk size too large", errBadMessage)
		}
		n = n<<4 | int64(d)
	}
	rest := bytes.TrimLeft(line[i:], " \t")
	if i == 0 || len(rest) > 0 && (rest[0] != ';' || !fieldValue(rest)) {
		return 0, fmt.Errorf("%w: bad chunk size %q", errBadMessage, line[:min(len(line), 40)])
	}
	return n, nil
}

func hexDigit(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// writeHex writes n in hex without the allocation of strconv.FormatInt.
func writeHex(dst *bufio.Writer, n int64) {
	shift := 60
	for shift > 0 && n>>shift == 0 {
		shift -= 4
	}
	for ; shift >= 0; shift -= 4 {
		_ = dst.WriteByte("0123456789abcdef"[n>>shift&0xf])
	}
}

// copyTrailers copies the trailer section that ends a chunked body of
// message h (the last chunk's line is written). Trailers follow the rules
// and limits of headers, so a malformed one breaks the message, as it
// would in a header; valid ones are forwarded if trailerAllowed.
func copyTrailers(dst *bufio.Writer, src *bufio.Reader, h *head, dechunk bool) error {
	size := 0
	for n := 0; ; n++ {
		line, err := readChunkLine(src)
		if err != nil {
			return err
		}
		if len(line) == 0 {
			if !dechunk {
				dst.WriteString("\r\n")
			}
			return nil
		}
		size += len(line) + 2
		if size > maxHeadBytes || n >= maxHeaders {
			return fmt.Errorf("%w: trailer section too large", errBadMessage)
		}
		name, value, ok := splitField(line)
		if !ok {
			return fmt.Errorf("%w: malformed trailer", errBadMessage)
		}
		if !dechunk && h.trailerAllowed(name) {
			dst.Write(name)
			dst.WriteString(": ")
			dst.Write(value)
			dst.WriteString("\r\n")
		}
	}
}
