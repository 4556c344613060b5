package local

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/oops-deploy/oops/release"
	"github.com/oops-deploy/oops/target"
)

// fencedError carries the proxy's words for a fenced-out request.
type fencedError string

func (e fencedError) Error() string { return string(e) }
func (e fencedError) Unwrap() error { return target.ErrFenced }

// The admin channel is HTTP over the unix socket in the state directory
// (mode 0600): only this user on this host can switch traffic.

// ProxyStatus is what a running proxy reports about itself.
type ProxyStatus struct {
	PID          int                                `json:"pid"`
	Started      time.Time                          `json:"started"`
	Live         release.Color                      `json:"live"`
	Since        time.Time                          `json:"since,omitzero"`
	Listen       string                             `json:"listen"`
	Preview      string                             `json:"preview,omitempty"`
	DrainTimeout string                             `json:"drain_timeout"`
	Colors       map[release.Color]ProxyColorStatus `json:"colors"`
	// Limits are absent from proxies older than them.
	Limits *ProxyLimits `json:"limits,omitempty"`
	// Canary is the color that takes CanaryWeight percent of the public
	// listener's requests during a canary (empty: none).
	Canary       release.Color `json:"canary,omitempty"`
	CanaryWeight int           `json:"canary_weight,omitempty"`
}

// ProxyLimits are the proxy's limits on client connections, and how near
// it is to them.
type ProxyLimits struct {
	// Connections are open now (public and preview listeners); Refused
	// were closed at once since the start, at MaxConnections.
	Connections    int64 `json:"connections"`
	MaxConnections int   `json:"max_connections"`
	Refused        int64 `json:"refused"`
	// OpenFiles is the descriptor limit (0: unknown).
	OpenFiles     uint64 `json:"open_files,omitempty"`
	HeaderTimeout string `json:"header_timeout"`
	BodyTimeout   string `json:"body_timeout"`
	WriteTimeout  string `json:"write_timeout"`
	IdleTimeout   string `json:"idle_timeout"`
	// UpstreamTimeout bounds the app's answer (then 504).
	UpstreamTimeout string `json:"upstream_timeout"`
}

// ProxyColorStatus is the proxy's view of one color.
type ProxyColorStatus struct {
	Port     int     `json:"port"`
	InFlight int     `json:"in_flight"`
	Health   *Health `json:"health,omitempty"`
	// Traffic sums up the last minute's requests.
	Traffic *target.Traffic `json:"traffic,omitempty"`
}

// ProxyMetrics are the proxy's request counts (GET /v1/metrics): the same
// numbers as its Prometheus metrics, and the last minute's.
type ProxyMetrics struct {
	// Since is when counting started (the proxy's start); At, this reading.
	Since time.Time `json:"since"`
	At    time.Time `json:"at"`
	// BucketBounds are the latency histograms' upper bounds in seconds;
	// each histogram has one bucket more, for what is slower.
	BucketBounds []float64                      `json:"bucket_bounds_seconds"`
	Colors       map[release.Color]ColorMetrics `json:"colors"`
}

// ColorMetrics are one color's counts since the start and over the last
// minute.
type ColorMetrics struct {
	Total RequestCounts `json:"total"`
	// DurationSumSeconds is the sum of the durations of all Total's requests.
	DurationSumSeconds float64         `json:"duration_sum_seconds"`
	LastMinute         RequestCounts   `json:"last_minute"`
	Summary            *target.Traffic `json:"last_minute_summary"`
}

type switchRequest struct {
	To   release.Color `json:"to"`
	From release.Color `json:"from,omitempty"`
	// Weight, 1 to 99, sends that share of the requests to To, the color
	// that is not live (a canary); 0 or 100 is a full switch.
	Weight int `json:"weight,omitempty"`
	// Generation is the sender's lock generation (0: none).
	Generation int64 `json:"generation,omitempty"`
}

type drainRequest struct {
	Color      release.Color `json:"color"`
	Generation int64         `json:"generation,omitempty"`
}

type drainResponse struct {
	Cut int `json:"cut"`
}

type errorResponse struct {
	Error    string `json:"error"`
	Conflict bool   `json:"conflict,omitempty"`
	Fenced   bool   `json:"fenced,omitempty"`
}

// adminError answers a refused switch or drain.
func adminError(w http.ResponseWriter, err error) {
	code := http.StatusInternalServerError
	if errors.Is(err, errConflict) || errors.Is(err, target.ErrFenced) {
		code = http.StatusConflict
	}
	writeAdminJSON(w, code, errorResponse{Error: err.Error(), Conflict: errors.Is(err, errConflict), Fenced: errors.Is(err, target.ErrFenced)})
}

// Status reports the proxy's state.
func (p *Proxy) Status() *ProxyStatus {
	p.mu.Lock()
	live, since := p.liveColor, p.since
	p.mu.Unlock()
	p.addrMu.Lock()
	st := &ProxyStatus{
		PID: os.Getpid(), Started: p.started, Live: live, Since: since,
		Listen: p.publicAddr, Preview: p.previewAddr,
		DrainTimeout: p.opts.DrainTimeout.String(),
		Colors:       map[release.Color]ProxyColorStatus{},
		Limits: &ProxyLimits{
			Connections: p.open.Load(), MaxConnections: p.maxConns, Refused: p.refused.Load(), OpenFiles: p.fds,
			HeaderTimeout: p.opts.HeaderTimeout.String(), BodyTimeout: p.opts.BodyTimeout.String(),
			WriteTimeout: p.opts.WriteTimeout.String(), IdleTimeout: p.opts.IdleTimeout.String(),
			UpstreamTimeout: p.opts.UpstreamTimeout.String(),
		},
	}
	p.addrMu.Unlock()
	st.Canary, st.CanaryWeight = p.Split()
	now := time.Now()
	for c, b := range p.backends {
		st.Colors[c] = ProxyColorStatus{Port: b.port, InFlight: p.InFlight(c), Health: b.health.Load(),
			Traffic: summary(b.metrics.lastMinute(now))}
	}
	return st
}

// Metrics reads the request counts of both colors.
func (p *Proxy) Metrics() *ProxyMetrics {
	now := time.Now()
	m := &ProxyMetrics{Since: p.started, At: p.opts.Now(), BucketBounds: BucketBounds(), Colors: map[release.Color]ColorMetrics{}}
	for c, b := range p.backends {
		total, sum := b.metrics.totals()
		last, span := b.metrics.lastMinute(now)
		m.Colors[c] = ColorMetrics{Total: total, DurationSumSeconds: sum.Seconds(), LastMinute: last, Summary: summary(last, span)}
	}
	return m
}

func (p *Proxy) adminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/status", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Has("check") {
			p.CheckNow(r.Context())
		}
		writeAdminJSON(w, http.StatusOK, p.Status())
	})
	mux.HandleFunc("GET /v1/metrics", func(w http.ResponseWriter, r *http.Request) {
		writeAdminJSON(w, http.StatusOK, p.Metrics())
	})
	mux.HandleFunc("POST /v1/switch", func(w http.ResponseWriter, r *http.Request) {
		var req switchRequest
		if err := json.NewDecoder(io.LimitReader(r.Body, 4096)).Decode(&req); err != nil {
			writeAdminJSON(w, http.StatusBadRequest, errorResponse{Error: "bad switch request: " + err.Error()})
			return
		}
		var err error
		if req.Weight > 0 && req.Weight < 100 {
			err = p.SplitFenced(req.To, req.Weight, req.Generation)
		} else {
			_, err = p.SwitchFenced(req.To, req.From, req.Generation)
		}
		if err != nil {
			adminError(w, err)
			return
		}
		writeAdminJSON(w, http.StatusOK, p.Status())
	})
	mux.HandleFunc("POST /v1/drain", func(w http.ResponseWriter, r *http.Request) {
		var req drainRequest
		if err := json.NewDecoder(io.LimitReader(r.Body, 4096)).Decode(&req); err != nil || !req.Color.Valid() {
			writeAdminJSON(w, http.StatusBadRequest, errorResponse{Error: "bad drain request: need a color"})
			return
		}
		n, err := p.DrainFenced(r.Context(), req.Color, req.Generation)
		if err != nil {
			adminError(w, err)
			return
		}
		writeAdminJSON(w, http.StatusOK, drainResponse{Cut: n})
	})
	return mux
}

func writeAdminJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// errProxyDown: no proxy answers on the state directory's socket.
var errProxyDown = errors.New("oops proxy is not running")

// adminClient talks to the proxy of one state directory.
type adminClient struct {
	sock string
	hc   *http.Client
}

func newAdminClient(stateDir string) *adminClient {
	sock := filepath.Join(stateDir, socketFile)
	return &adminClient{
		sock: sock,
		hc: &http.Client{
			Transport: &http.Transport{
				DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
					var d net.Dialer
					return d.DialContext(ctx, "unix", sock)
				},
				DisableKeepAlives: true,
			},
		},
	}
}

// do sends one admin request. A proxy that is not there at all is
// errProxyDown, so callers can fall back to the state files.
func (c *adminClient) do(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://oops-proxy"+path, rd)
	if err != nil {
		return err
	}
	res, err := c.hc.Do(req)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ENOENT) {
			return errProxyDown
		}
		return fmt.Errorf("reach oops proxy at %s: %w", c.sock, err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		var er errorResponse
		_ = json.NewDecoder(res.Body).Decode(&er)
		if er.Error == "" {
			er.Error = res.Status
		}
		if er.Fenced {
			return fmt.Errorf("oops proxy refused: %w", fencedError(er.Error))
		}
		if er.Conflict {
			return fmt.Errorf("%w: %s", errConflict, er.Error)
		}
		return fmt.Errorf("oops proxy: %s", er.Error)
	}
	return json.NewDecoder(res.Body).Decode(out)
}

// status reports the proxy's state; with check, after checking both
// colors' health afresh.
func (c *adminClient) status(ctx context.Context, check bool) (*ProxyStatus, error) {
	path := "/v1/status"
	if check {
		path += "?check"
	}
	var st ProxyStatus
	if err := c.do(ctx, http.MethodGet, path, nil, &st); err != nil {
		return nil, err
	}
	return &st, nil
}

// metrics reads the proxy's request counts.
func (c *adminClient) metrics(ctx context.Context) (*ProxyMetrics, error) {
	var m ProxyMetrics
	if err := c.do(ctx, http.MethodGet, "/v1/metrics", nil, &m); err != nil {
		return nil, err
	}
	return &m, nil
}

func (c *adminClient) switchTo(ctx context.Context, to, from release.Color, weight int) (*ProxyStatus, error) {
	var st ProxyStatus
	if err := target.CheckFence(ctx); err != nil {
		return nil, err
	}
	req := switchRequest{To: to, From: from, Weight: weight, Generation: target.FenceGeneration(ctx)}
	if err := c.do(ctx, http.MethodPost, "/v1/switch", req, &st); err != nil {
		return nil, err
	}
	return &st, nil
}

func (c *adminClient) drain(ctx context.Context, color release.Color) (int, error) {
	var dr drainResponse
	if err := target.CheckFence(ctx); err != nil {
		return 0, err
	}
	req := drainRequest{Color: color, Generation: target.FenceGeneration(ctx)}
	if err := c.do(ctx, http.MethodPost, "/v1/drain", req, &dr); err != nil {
		return 0, err
	}
	return dr.Cut, nil
}
