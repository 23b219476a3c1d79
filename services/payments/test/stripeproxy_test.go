package test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tallyhq/tally/pkg/testenv"
)

// stripeProxy is a real HTTP proxy in front of stripe-mock that records the refunds tally asks
// Stripe for, and can make the next ones fail the way a Stripe outage does.
type stripeProxy struct {
	URL string

	mu sync.Mutex
	// refundKeys are the Idempotency-Key headers of every POST /v1/refunds, in order.
	refundKeys []string
	// failRefunds is how many of the next refund calls answer 500 (without a retry hint).
	failRefunds int
	// hold, while open, keeps refund calls waiting.
	hold chan struct{}
	// refundStatus, when set, replaces the status of the refunds Stripe answers with (created or
	// read), as a refund in flight at Stripe and its settlement would show.
	refundStatus string
	// refundReads counts GET /v1/refunds/{id}.
	refundReads int
	// customers counts POST /v1/customers; intentReads GET /v1/payment_intents/{id}.
	customers, intentReads int
	// intentStatus, when set, replaces the status of the PaymentIntents read back (GET), as one
	// Stripe settled after answering processing would show.
	intentStatus string
}

func startStripeProxy(t *testing.T) *stripeProxy {
	t.Helper()
	target, err := url.Parse(testenv.StripeMock(t).URL())
	require.NoError(t, err)
	p := &stripeProxy{}
	rp := httputil.NewSingleHostReverseProxy(target)
	rp.ModifyResponse = p.rewriteRefund
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/v1/refunds/") {
			p.mu.Lock()
			p.refundReads++
			p.mu.Unlock()
		}
		p.countCustomersAndIntents(r)
		if r.Method == http.MethodPost && r.URL.Path == "/v1/refunds" {
			p.mu.Lock()
			p.refundKeys = append(p.refundKeys, r.Header.Get("Idempotency-Key"))
			fail := p.failRefunds > 0
			if fail {
				p.failRefunds--
			}
			hold := p.hold
			p.mu.Unlock()
			if hold != nil {
				select {
				case <-hold:
				case <-r.Context().Done():
					return
				}
			}
			if fail {
				w.Header().Set("Stripe-Should-Retry", "false")
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusInternalServerError)
				_, _ = w.Write([]byte(`{"error":{"type":"api_error","message":"outage"}}`))
				return
			}
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	p.URL = srv.URL
	return p
}

func (p *stripeProxy) countCustomersAndIntents(r *http.Request) {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case r.Method == http.MethodPost && r.URL.Path == "/v1/customers":
		p.customers++
	case r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/v1/payment_intents/"):
		p.intentReads++
	}
}

// rewriteRefund applies refundStatus to a refund in a response, and intentStatus to a
// PaymentIntent read back.
func (p *stripeProxy) rewriteRefund(resp *http.Response) error {
	p.mu.Lock()
	st, kind := p.refundStatus, "refund"
	if resp.Request.Method == http.MethodGet && strings.HasPrefix(resp.Request.URL.Path, "/v1/payment_intents/") {
		st, kind = p.intentStatus, "payment_intent"
	} else if !strings.HasPrefix(resp.Request.URL.Path, "/v1/refunds") {
		st = ""
	}
	p.mu.Unlock()
	if st == "" || resp.StatusCode != http.StatusOK {
		return nil
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	_ = resp.Body.Close()
	var obj map[string]any
	if err := json.Unmarshal(body, &obj); err != nil {
		return err
	}
	if obj["object"] == kind {
		obj["status"] = st
		if body, err = json.Marshal(obj); err != nil {
			return err
		}
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	resp.ContentLength = int64(len(body))
	resp.Header.Set("Content-Length", strconv.Itoa(len(body)))
	return nil
}

// setRefundStatus makes Stripe report refunds with status st from now on ("" for stripe-mock's own).
func (p *stripeProxy) setRefundStatus(st string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.refundStatus = st
}

// reads is how often a refund was read back.
func (p *stripeProxy) reads() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.refundReads
}

// refunds returns the idempotency keys of the refund calls so far.
func (p *stripeProxy) refunds() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.refundKeys...)
}

// holdRefunds keeps refund calls waiting until the returned function is called.
func (p *stripeProxy) holdRefunds() (release func()) {
	p.mu.Lock()
	defer p.mu.Unlock()
	hold := make(chan struct{})
	p.hold = hold
	var once sync.Once
	return func() {
		once.Do(func() {
			p.mu.Lock()
			p.hold = nil
			p.mu.Unlock()
			close(hold)
		})
	}
}

// failNextRefunds makes the next n refund calls fail.
func (p *stripeProxy) failNextRefunds(n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.failRefunds = n
}

// setIntentStatus makes Stripe report the PaymentIntents read back with status st.
func (p *stripeProxy) setIntentStatus(st string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.intentStatus = st
}

// counts returns how many customers were created and PaymentIntents read so far.
func (p *stripeProxy) counts() (customers, intentReads int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.customers, p.intentReads
}
