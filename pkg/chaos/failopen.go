package chaos

import (
	"slices"
	"sort"
	"time"
)

// ledgerTx is one committed ledger transaction of an organization, as PostgreSQL holds it.
type ledgerTx struct {
	id      string
	org     string
	kind    string
	amount  int64 // signed change of the organization's balance
	key     string
	created time.Time // set before the commit: a transaction committed at T has created <= T
}

// availability bounds from above what an organization could afford at any moment, from its
// committed transactions and the moments the suite knows some of them were committed by.
//
// An Authorize answered during [sent, recv] may have seen any state the organization was in
// during that call, or a cached copy lagging by at most the grace period (the cache is written
// after the commit, off the commit path). Increases of the balance count as soon as they may have
// been committed (created <= recv); decreases count only once they were certainly committed
// before sent − grace, i.e. acknowledged to the suite by then. Debits still in flight, or whose
// outcome the suite never learnt, never count against an Authorize: the README's rule that the
// worst-case overspend is the calls in flight. So the bound is never below the truth, and an
// Authorize allowed above it is a fail-open.
type availability struct {
	upAt    []time.Time // increases, by created
	upSum   []int64     // upSum[i]: the increases up to and including upAt[i]
	downAt  []time.Time // certain decreases, by the time they were acknowledged
	downSum []int64
}

// buildAvailability indexes the transactions of each organization; acked maps an idempotency key
// (of org) to when the suite saw it acknowledged.
func buildAvailability(txs []ledgerTx, acked map[orgKey]time.Time) map[string]*availability {
	type event struct {
		at     time.Time
		amount int64
	}
	ups, downs := map[string][]event{}, map[string][]event{}
	for _, tx := range txs {
		switch {
		case tx.amount > 0:
			ups[tx.org] = append(ups[tx.org], event{tx.created, tx.amount})
		case tx.amount < 0:
			if at, ok := acked[orgKey{tx.org, tx.key}]; ok {
				downs[tx.org] = append(downs[tx.org], event{at, -tx.amount})
			}
		}
	}
	out := map[string]*availability{}
	get := func(org string) *availability {
		if out[org] == nil {
			out[org] = &availability{}
		}
		return out[org]
	}
	cumulate := func(evs []event) ([]time.Time, []int64) {
		slices.SortFunc(evs, func(a, b event) int { return a.at.Compare(b.at) })
		at, sum := make([]time.Time, len(evs)), make([]int64, len(evs))
		var total int64
		for i, e := range evs {
			total += e.amount
			at[i], sum[i] = e.at, total
		}
		return at, sum
	}
	for org, evs := range ups {
		a := get(org)
		a.upAt, a.upSum = cumulate(evs)
	}
	for org, evs := range downs {
		a := get(org)
		a.downAt, a.downSum = cumulate(evs)
	}
	return out
}

// orgKey identifies an idempotency key of an organization.
type orgKey struct{ org, key string }

// sumUntil returns the last cumulative sum at or before t.
func sumUntil(at []time.Time, sum []int64, t time.Time) int64 {
	i := sort.Search(len(at), func(i int) bool { return at[i].After(t) })
	if i == 0 {
		return 0
	}
	return sum[i-1]
}

// upper is the most the organization can have had available during [sent, recv].
func (a *availability) upper(sent, recv time.Time, grace time.Duration) int64 {
	if a == nil {
		return 0
	}
	return sumUntil(a.upAt, a.upSum, recv) - sumUntil(a.downAt, a.downSum, sent.Add(-grace))
}

// failOpen returns whether Authorize call c was allowed above what its organization could afford,
// and by how much. Quiet-phase probes are judged against the amount read from PostgreSQL around
// them; the others against the reconstruction.
func failOpen(c *authz, hist map[string]*availability, grace time.Duration) (bool, int64) {
	if !c.allowed {
		return false, 0
	}
	bound := hist[c.org].upper(c.sent, c.recv, grace)
	if c.quiet {
		bound = min(bound, max(c.before, c.after))
	}
	if c.amount > bound {
		return true, c.amount - bound
	}
	return false, 0
}
