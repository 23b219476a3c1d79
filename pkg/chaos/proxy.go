package chaos

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync"
	"time"
)

// ProxyMode is what the fault proxy does with the requests it receives.
type ProxyMode int

// The fault proxy's modes.
const (
	// ProxyPass forwards every request.
	ProxyPass ProxyMode = iota
	// ProxyError answers 500 with a Stripe api_error, as an outage of Stripe's API does.
	ProxyError
	// ProxyTimeout accepts requests and never answers: the client times out.
	ProxyTimeout
	// ProxyReset closes each connection as soon as a request arrives on it (a reset by a
	// middlebox).
	ProxyReset
	// ProxyDown closes the listener: connections are refused, the address stays reserved.
	ProxyDown
)

// String names the mode.
func (m ProxyMode) String() string {
	switch m {
	case ProxyPass:
		return "pass"
	case ProxyError:
		return "error"
	case ProxyTimeout:
		return "timeout"
	case ProxyReset:
		return "reset"
	case ProxyDown:
		return "down"
	}
	return fmt.Sprintf("mode(%d)", int(m))
}

// maxRecordedBody bounds the request body the proxy keeps for ProxyRequest.Form.
const maxRecordedBody = 64 << 10

// ProxyRequest is one request the proxy received.
type ProxyRequest struct {
	At     time.Time
	Method string
	Path   string
	// IdempotencyKey is the request's Idempotency-Key header.
	IdempotencyKey string
	// Form is the decoded form body of a POST (Stripe's API takes forms).
	Form url.Values
	// Mode is what the proxy did with it.
	Mode ProxyMode
	// Status is the answer's HTTP status, 0 when there was none.
	Status int
}

// FaultProxy is a real HTTP proxy on loopback in front of stripe-mock that injects network and
// API faults on command and records every request.
type FaultProxy struct {
	addr   string
	target *url.URL
	rp     *httputil.ReverseProxy

	mu       sync.Mutex
	mode     ProxyMode
	lis      net.Listener
	srv      *http.Server
	requests []ProxyRequest
	held     chan struct{} // closed to release the requests held by ProxyTimeout
	closed   bool
}

// StartFaultProxy starts a proxy on a free loopback port forwarding to target.
func StartFaultProxy(target string) (*FaultProxy, error) {
	u, err := url.Parse(target)
	if err != nil {
		return nil, fmt.Errorf("fault proxy target: %w", err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("fault proxy: %w", err)
	}
	p := &FaultProxy{addr: lis.Addr().String(), target: u, rp: httputil.NewSingleHostReverseProxy(u), held: make(chan struct{})}
	p.serveLocked(lis)
	return p, nil
}

// URL is the proxy's base URL.
func (p *FaultProxy) URL() string { return "http://" + p.addr }

// Mode returns the current mode.
func (p *FaultProxy) Mode() ProxyMode {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.mode
}

// SetMode switches to m. Leaving ProxyTimeout lets the held requests fail (as their connection
// drops); leaving ProxyDown listens again on the same address.
func (p *FaultProxy) SetMode(m ProxyMode) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || m == p.mode {
		return nil
	}
	prev := p.mode
	p.mode = m
	if prev == ProxyTimeout {
		close(p.held)
		p.held = make(chan struct{})
	}
	switch {
	case m == ProxyDown:
		// Close the listener and every open connection: new ones are refused.
		_ = p.srv.Close()
		p.srv, p.lis = nil, nil
	case prev == ProxyDown:
		lis, err := net.Listen("tcp", p.addr)
		if err != nil {
			p.mode = ProxyDown
			return fmt.Errorf("fault proxy: listening again on %s: %w", p.addr, err)
		}
		p.serveLocked(lis)
	}
	return nil
}

// serveLocked serves lis; the caller holds mu (or is the constructor).
func (p *FaultProxy) serveLocked(lis net.Listener) {
	srv := &http.Server{Handler: http.HandlerFunc(p.handle), ReadHeaderTimeout: 10 * time.Second}
	p.lis, p.srv = lis, srv
	go func() { _ = srv.Serve(lis) }()
}

// Requests returns the requests received so far.
func (p *FaultProxy) Requests() []ProxyRequest {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]ProxyRequest(nil), p.requests...)
}

// Close stops the proxy.
func (p *FaultProxy) Close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return
	}
	p.closed = true
	if p.mode == ProxyTimeout {
		close(p.held)
	}
	if p.srv != nil {
		_ = p.srv.Close()
	}
}

// statusRecorder remembers the status a handler wrote.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

func (p *FaultProxy) handle(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxRecordedBody))
	if err != nil {
		http.Error(w, "unreadable body", http.StatusBadRequest)
		return
	}
	_ = r.Body.Close()
	r.Body = io.NopCloser(bytes.NewReader(body))
	form, _ := url.ParseQuery(string(body))
	p.mu.Lock()
	mode, held := p.mode, p.held
	idx := len(p.requests)
	p.requests = append(p.requests, ProxyRequest{At: time.Now(), Method: r.Method, Path: r.URL.Path,
		IdempotencyKey: r.Header.Get("Idempotency-Key"), Form: form, Mode: mode})
	p.mu.Unlock()

	rec := &statusRecorder{ResponseWriter: w}
	defer func() {
		p.mu.Lock()
		p.requests[idx].Status = rec.status
		p.mu.Unlock()
	}()
	switch mode {
	case ProxyError:
		w.Header().Set("Content-Type", "application/json")
		rec.WriteHeader(http.StatusInternalServerError)
		_, _ = io.WriteString(rec, `{"error":{"type":"api_error","message":"chaos: injected Stripe outage"}}`)
	case ProxyTimeout:
		select {
		case <-r.Context().Done():
		case <-held:
		}
		p.abort(w)
	case ProxyReset:
		p.abort(w)
	default:
		p.rp.ServeHTTP(rec, r)
	}
}

// abort drops the connection without an answer, with a TCP reset.
func (p *FaultProxy) abort(w http.ResponseWriter) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		http.Error(w, "chaos: connection cannot be dropped", http.StatusBadGateway)
		return
	}
	conn, _, err := hj.Hijack()
	if err != nil {
		http.Error(w, "chaos: connection cannot be dropped", http.StatusBadGateway)
		return
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = conn.Close()
}
