package chaos

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestFailOpen walks the example (a balance of 100, a debit of 40, then Authorize(90))
// through the timings that make an allowed Authorize a fail-open or not.
func TestFailOpen(t *testing.T) {
	t.Parallel()
	base := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return base.Add(time.Duration(ms) * time.Millisecond) }
	const grace = time.Second
	txs := []ledgerTx{
		{org: "acme", kind: "credit", amount: 100 * unit, key: "grant", created: at(0)},
		{org: "acme", kind: "debit", amount: -40 * unit, key: "call-1", created: at(100)},
		// Committed, but its outcome never reached the suite: it is in flight for ever.
		{org: "acme", kind: "debit", amount: -10 * unit, key: "call-2", created: at(200)},
		{org: "acme", kind: "credit", amount: 50 * unit, key: "top-up", created: at(10_000)},
	}
	acked := map[orgKey]time.Time{{"acme", "call-1"}: at(150)}
	hist := buildAvailability(txs, acked)

	tests := []struct {
		name      string
		call      authz
		open      bool
		overspend int64
	}{
		{name: "refused is never a fail-open", call: authz{org: "acme", amount: 90 * unit, sent: at(5000), recv: at(5001)}},
		{name: "allowed within what the organization had", call: authz{org: "acme", amount: 60 * unit, sent: at(5000), recv: at(5001), allowed: true}},
		{name: "allowed above it, long after the debit was acknowledged",
			call: authz{org: "acme", amount: 90 * unit, sent: at(5000), recv: at(5001), allowed: true}, open: true, overspend: 30 * unit},
		{name: "the debit acknowledged less than the grace period before may not be in the cache yet",
			call: authz{org: "acme", amount: 90 * unit, sent: at(900), recv: at(901), allowed: true}},
		{name: "before the debit was acknowledged it is in flight",
			call: authz{org: "acme", amount: 100 * unit, sent: at(120), recv: at(130), allowed: true}},
		{name: "above the credits is a fail-open even with everything in flight",
			call: authz{org: "acme", amount: 100*unit + 1, sent: at(120), recv: at(130), allowed: true}, open: true, overspend: 1},
		{name: "a credit counts as soon as it may have been committed",
			call: authz{org: "acme", amount: 110 * unit, sent: at(9_999), recv: at(10_000), allowed: true}},
		{name: "but not before it was created",
			call: authz{org: "acme", amount: 110 * unit, sent: at(9_000), recv: at(9_500), allowed: true}, open: true, overspend: 50 * unit},
		{name: "an organization without transactions has nothing",
			call: authz{org: "other", amount: 1, sent: at(5000), recv: at(5001), allowed: true}, open: true, overspend: 1},
		{name: "Authorize(0) on nothing is fine", call: authz{org: "other", amount: 0, sent: at(5000), recv: at(5001), allowed: true}},
		{name: "a quiet probe is judged by what PostgreSQL held around it",
			call: authz{org: "acme", amount: 50*unit + 1, sent: at(5000), recv: at(5001), allowed: true, quiet: true, before: 50 * unit, after: 50 * unit},
			open: true, overspend: 1},
		{name: "a quiet probe within it",
			call: authz{org: "acme", amount: 50 * unit, sent: at(5000), recv: at(5001), allowed: true, quiet: true, before: 50 * unit, after: 50 * unit}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			open, over := failOpen(&tt.call, hist, grace)
			require.Equal(t, tt.open, open)
			require.Equal(t, tt.overspend, over)
		})
	}
}

func TestSplitOrgs(t *testing.T) {
	t.Parallel()
	tests := []struct {
		n    int
		orgs []string
		want [][]string
	}{
		{3, []string{"a", "b", "c", "d", "e", "f", "g", "h"}, [][]string{{"a", "b", "c"}, {"d", "e", "f"}, {"g", "h"}}},
		{6, []string{"a", "b"}, [][]string{{"a"}, {"b"}}},
		{0, []string{"a", "b"}, [][]string{{"a", "b"}}},
	}
	for _, tt := range tests {
		require.Equal(t, tt.want, splitOrgs(tt.orgs, tt.n))
	}
}

func TestSignPayload(t *testing.T) {
	t.Parallel()
	// The HMAC-SHA256 Stripe defines, computed independently.
	require.Equal(t, "t=1700000000,v1=c89214b5b5da833daed6f0b8c5bb6bd58cea9022bd80ccc78230f3942d632925",
		signPayload([]byte(`{"id":"evt_1"}`), "whsec_test", time.Unix(1_700_000_000, 0)))
}

func TestSelect(t *testing.T) {
	t.Parallel()
	short, err := Select(true, nil)
	require.NoError(t, err)
	full, err := Select(false, nil)
	require.NoError(t, err)
	require.Len(t, full, len(Scenarios()))
	require.Less(t, len(short), len(full))
	for _, sc := range short {
		require.True(t, sc.Short, sc.Name)
	}
	named, err := Select(true, []string{"smtp-stall", "baseline"})
	require.NoError(t, err)
	require.Equal(t, "smtp-stall", named[0].Name)
	require.Equal(t, "baseline", named[1].Name)
	_, err = Select(false, []string{"nope"})
	require.ErrorContains(t, err, `unknown scenario "nope"`)
	names := map[string]bool{}
	for _, sc := range full {
		require.False(t, names[sc.Name], "duplicate scenario %s", sc.Name)
		names[sc.Name] = true
		require.NotNil(t, sc.Inject, sc.Name)
		require.NotEmpty(t, sc.Fault, sc.Name)
	}
}
