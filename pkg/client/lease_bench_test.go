package client_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tallyhq/tally/pkg/client"
)

// BenchmarkLeaseAuthorize is the per-call check of a backend holding a lease: no round trip,
// one atomic load (target ≥ 1,000,000/s in-process; `go test -bench LeaseAuthorize ./pkg/client`).
func BenchmarkLeaseAuthorize(b *testing.B) {
	m := newMemLedger()
	m.credit("acme", 1_000_000*unit)
	c := newClient(b, m.serve(b), nil)
	l, err := c.Lease(b.Context(), client.LeaseConfig{OrgID: "acme", HoldAmount: 1000 * unit, CaptureInterval: time.Hour, TTL: 24 * time.Hour})
	require.NoError(b, err)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if !l.Authorize(2500) {
				b.Error("refused")
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "authorize/s")
}

// BenchmarkLeaseDebit draws locally (a mutex and a map insert per debit).
func BenchmarkLeaseDebit(b *testing.B) {
	m := newMemLedger()
	m.credit("acme", 1_000_000*unit)
	c := newClient(b, m.serve(b), nil)
	l, err := c.Lease(b.Context(), client.LeaseConfig{OrgID: "acme", HoldAmount: 100_000 * unit, CaptureInterval: time.Hour, TTL: 24 * time.Hour})
	require.NoError(b, err)
	keys := make([]string, b.N)
	for i := range keys {
		keys[i] = "k" + itoa(i)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if _, err := l.Debit(keys[i], 1); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "debit/s")
}

func itoa(i int) string {
	var buf [20]byte
	n := len(buf)
	for {
		n--
		buf[n] = byte('0' + i%10)
		if i /= 10; i == 0 {
			return string(buf[n:])
		}
	}
}
