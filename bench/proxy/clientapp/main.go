// Command clientapp is the app behind the proxies in bench/proxy/clients.sh:
// a small HTTP/1.1 server written on the socket, so it behaves the way the
// apps that tripped proxies do, which net/http would smooth over:
//
//	/healthcheck  200 ok
//	/headers      the forwarding headers it got, one per line
//	/upload       reads the body without ever sending 100 Continue (like
//	              Python's http.server), answers its length
//	/toolarge     413 before reading the body (an upload limit), then
//	              closes politely (half-close, drain), so resets come
//	              only from the proxy
//	/hang         never answers
//
// With -freeport it prints a free loopback port and exits. Loopback only.
package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"time"
)

func main() {
	port := flag.Int("port", 0, "port on 127.0.0.1 (0: any, printed)")
	freePort := flag.Bool("freeport", false, "print a free loopback port and exit")
	flag.Parse()
	l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", *port))
	if err != nil {
		fmt.Fprintln(os.Stderr, "clientapp:", err)
		os.Exit(1)
	}
	fmt.Println(l.Addr().(*net.TCPAddr).Port)
	if *freePort {
		l.Close()
		return
	}
	for {
		c, err := l.Accept()
		if err != nil {
			fmt.Fprintln(os.Stderr, "clientapp:", err)
			os.Exit(1)
		}
		go serve(c)
	}
}

func serve(c net.Conn) {
	defer c.Close()
	br := bufio.NewReader(c)
	for {
		req, err := http.ReadRequest(br)
		if err != nil {
			if !errors.Is(err, io.EOF) {
				io.WriteString(c, "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
			}
			return
		}
		var body string
		switch req.URL.Path {
		case "/headers":
			var b strings.Builder
			for _, h := range []string{"Host", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto", "Forwarded", "Expect"} {
				v := req.Header.Values(h)
				if h == "Host" {
					v = []string{req.Host}
				}
				fmt.Fprintf(&b, "%s: %s\n", h, strings.Join(v, " | "))
			}
			body = b.String()
		case "/upload":
			n, _ := io.Copy(io.Discard, req.Body)
			body = fmt.Sprintf("len=%d\n", n)
		case "/toolarge":
			io.WriteString(c, "HTTP/1.1 413 Content Too Large\r\nContent-Length: 10\r\nConnection: close\r\n\r\ntoo large\n")
			if tc, ok := c.(*net.TCPConn); ok {
				_ = tc.CloseWrite()
			}
			_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
			_, _ = io.Copy(io.Discard, c)
			return
		case "/hang":
			_, _ = io.Copy(io.Discard, br)
			return
		default:
			io.Copy(io.Discard, req.Body)
			body = "ok\n"
		}
		fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
	}
}
