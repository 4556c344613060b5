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

var (
	errHeadTooLarge  = errors.New("message head too large")
	errBadMessage    = errors.New("malformed HTTP message")
	errUnsupportedTE = errors.New("unsupported transfer encoding")
)

// span is a [start, end) range in head.buf.
type span struct{ s, e int32 }

type field struct{ name, value span }

// head is one parsed request or response head. Reused across messages of
// a connection: reset clears it without freeing its buffers.
type head struct {
	buf    []byte
	fields []field

	// Request line.
	method, target span
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
	h.method, h.target, h.reason, h.upgrade = span{}, span{}, span{}, span{}
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
		return err
	}
	m := bytes.IndexByte(line, ' ')
	t := bytes.LastIndexByte(line, ' ')
	if m <= 0 || t <= m+1 || !isToken(line[:m]) {
		return errBadMessage
	}
	minor, ok := parseVersion(line[t+1:])
	if !ok {
		return errBadMessage
	}
	target := line[m+1 : t]
	if !visible(target) {
		return errBadMessage
	}
	h.minor = minor
	h.method = h.add(line[:m])
	h.target = h.add(target)
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
	h.minor, h.status = minor, status
	if len(line) > 13 {
		h.reason = h.add(line[13:])
	}
	return h.readFields(br, false)
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
		// Obsolete line folding and a space before the colon are how
		// requests get smuggled past proxies: refuse both.
		if line[0] == ' ' || line[0] == '\t' {
			return errBadMessage
		}
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 || !isToken(line[:colon]) {
			return errBadMessage
		}
		value := bytes.Trim(line[colon+1:], " \t")
		// A bare CR or other control byte in a value is read as a line
		// end by some servers: another way to smuggle a header in.
		if !fieldValue(value) {
			return errBadMessage
		}
		f := field{name: h.add(line[:colon]), value: h.add(value)}
		h.fields = append(h.fields, f)
		if err := h.note(f, request); err != nil {
			return err
		}
	}
	if h.chunked && h.contentLength >= 0 {
		if request {
			return errBadMessage
		}
		h.contentLength = -1 // a response's chunked framing wins (RFC 9112, 6.3)
	}
	return nil
}

// note records what the proxy itself needs from a header.
func (h *head) note(f field, request bool) error {
	name, value := h.get(f.name), h.get(f.value)
	switch len(name) {
	case 4:
		if request && bytes.EqualFold(name, []byte("host")) {
			if h.hasHost {
				return errBadMessage
			}
			h.hasHost = true
		}
	case 6:
		if request && bytes.EqualFold(name, []byte("expect")) && bytes.EqualFold(value, []byte("100-continue")) {
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
		}
	case 17:
		if bytes.EqualFold(name, []byte("transfer-encoding")) {
			if h.chunked || !bytes.EqualFold(value, []byte("chunked")) {
				return errUnsupportedTE
			}
			h.chunked = true
		}
	}
	return nil
}

// hopByHop reports whether a header is for one connection only and must
// not be forwarded (RFC 9110, 7.6.1), or is one the proxy writes itself.
func (h *head) hopByHop(name []byte) bool {
	switch len(name) {
	case 2:
		return bytes.EqualFold(name, []byte("te"))
	case 7:
		return bytes.EqualFold(name, []byte("trailer")) || bytes.EqualFold(name, []byte("upgrade"))
	case 10:
		return bytes.EqualFold(name, []byte("connection")) || bytes.EqualFold(name, []byte("keep-alive"))
	case 14:
		return bytes.EqualFold(name, []byte("content-length"))
	case 16:
		return bytes.EqualFold(name, []byte("proxy-connection"))
	case 17:
		return bytes.EqualFold(name, []byte("transfer-encoding"))
	}
	for _, t := range h.connTokens {
		if bytes.EqualFold(name, h.get(t)) {
			return true
		}
	}
	return false
}

// Forwarding headers, as forwardedHeader tells them apart.
const (
	fwdNone = iota
	fwdFor
	fwdHost
	fwdProto
	fwdRFC7239 // Forwarded
)

func forwardedHeader(name []byte) int {
	switch len(name) {
	case 9:
		if bytes.EqualFold(name, []byte("forwarded")) {
			return fwdRFC7239
		}
	case 15:
		if bytes.EqualFold(name, []byte("x-forwarded-for")) {
			return fwdFor
		}
	case 16:
		if bytes.EqualFold(name, []byte("x-forwarded-host")) {
			return fwdHost
		}
	case 17:
		if bytes.EqualFold(name, []byte("x-forwarded-proto")) {
			return fwdProto
		}
	}
	return fwdNone
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
		case k == fwdFor:
			xff = appendList(xff, h.get(f.value))
			continue
		case k == fwdRFC7239:
			fwd = appendList(fwd, h.get(f.value))
			continue
		}
		if len(name) == 4 && bytes.EqualFold(name, []byte("host")) {
			host = h.get(f.value)
		}
		if h.hopByHop(name) {
			continue
		}
		hasHost = hasHost || k == fwdHost
		hasProto = hasProto || k == fwdProto
		dst = appendField(dst, name, h.get(f.value))
	}
	if host == nil {
		// An HTTP/1.0 client may send none; HTTP/1.1 to the app needs one.
		host = []byte(appHost)
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

func (h *head) wantsUpgrade() bool { return h.connUpgrade && h.upgrade.e > h.upgrade.s }

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
		if h.hopByHop(name) {
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

// copyChunked copies a chunked body, re-chunked as read (dechunk: only its
// data, for HTTP/1.0 clients), trailers included (dropped when dechunking).
func copyChunked(dst *bufio.Writer, src *bufio.Reader, dechunk bool, buf []byte) error {
	for {
		if src.Buffered() == 0 && dst.Buffered() > 0 {
			if err := dst.Flush(); err != nil {
				return err
			}
		}
		line, err := readLine(src)
		if err != nil {
			if errors.Is(err, io.EOF) {
				return io.ErrUnexpectedEOF
			}
			return err
		}
		sizeHex := line
		if i := bytes.IndexByte(sizeHex, ';'); i >= 0 {
			sizeHex = sizeHex[:i]
		}
		sizeHex = bytes.Trim(sizeHex, " \t")
		size, err := strconv.ParseInt(string(sizeHex), 16, 64)
		if err != nil || size < 0 || len(sizeHex) > 16 {
			return fmt.Errorf("%w: bad chunk size %q", errBadMessage, line)
		}
		if !dechunk {
			dst.WriteString(strconv.FormatInt(size, 16))
			dst.WriteString("\r\n")
		}
		if size == 0 {
			for {
				t, err := readLine(src)
				if err != nil {
					return err
				}
				if !dechunk {
					dst.Write(t)
					dst.WriteString("\r\n")
				}
				if len(t) == 0 {
					return nil
				}
			}
		}
		if err := copyBody(dst, src, size, buf); err != nil {
			return err
		}
		if crlf, err := readLine(src); err != nil || len(crlf) != 0 {
			return fmt.Errorf("%w: chunk not followed by CRLF", errBadMessage)
		}
		if !dechunk {
			dst.WriteString("\r\n")
		}
	}
}
