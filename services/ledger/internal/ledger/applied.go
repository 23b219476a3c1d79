package ledger

import (
	"errors"
	"fmt"
)

// ErrOutcomeUnknown marks a batch whose COMMIT was sent but whose answer never came: it may or
// may not have committed. Running the same requests again resolves it: their idempotency keys
// replay whatever did commit, and the ledger's own key-less requests re-check under lock.
var ErrOutcomeUnknown = errors.New("the outcome of the ledger batch is unknown")

// Outcome is the result of one request of a batch.
type Outcome struct {
	Result Result
	Err    error
}

// Applied is what a committed batch did.
type Applied struct {
	Outcomes []Outcome
	// Accounts are the states, as committed, of every account the batch locked: the ones it
	// changed and the ones it only replayed or refused, so any request refreshes the cache.
	Accounts []Account
	// CacheEpoch is the balance-cache epoch read in the batch transaction before its accounts
	// were locked: never newer than the epoch current when Accounts were committed.
	CacheEpoch int64
	Events     int
}

// OpensAccount says whether a request of op may create the organization's account.
func OpensAccount(op Operation) bool {
	return op == OpCredit || op == OpDebit || op == OpAdjust
}

// NewAccount is an organization's account a batch may have to open, in Currency ("" for the
// ledger's default currency).
type NewAccount struct{ OrgID, Currency string }

// KeyRef names an idempotency key a batch must look up: of OrgID, or of the organization of
// the hold HoldID when the request names a hold.
type KeyRef struct{ OrgID, HoldID, Key string }

// LockSet is what a batch of requests reads under lock before Decide runs.
type LockSet struct {
	// Orgs are the organizations named by the requests that do not name a hold, in first-seen
	// order; the organizations of the holds named are locked too.
	Orgs []string
	// Open are the accounts the requests may open (credits, debits and adjustments), one per org.
	Open    []NewAccount
	HoldIDs []string
	Keys    []KeyRef
}

// LockSetOf returns what reqs need locked. A request naming a hold acts on the hold's
// organization, whatever organization it names.
func LockSetOf(reqs []*Request) LockSet {
	var ls LockSet
	seenOrg, seenOpen := map[string]bool{}, map[string]bool{}
	for _, r := range reqs {
		if r.HoldID != "" {
			ls.HoldIDs = append(ls.HoldIDs, r.HoldID)
		}
		if r.IdempotencyKey != "" {
			if r.HoldID != "" {
				ls.Keys = append(ls.Keys, KeyRef{HoldID: r.HoldID, Key: r.IdempotencyKey})
			} else {
				ls.Keys = append(ls.Keys, KeyRef{OrgID: r.OrgID, Key: r.IdempotencyKey})
			}
		}
		if r.OrgID == "" || r.HoldID != "" {
			continue // requests naming a hold act on the hold's organization
		}
		if !seenOrg[r.OrgID] {
			seenOrg[r.OrgID] = true
			ls.Orgs = append(ls.Orgs, r.OrgID)
		}
		if OpensAccount(r.Op) && !seenOpen[r.OrgID] {
			seenOpen[r.OrgID] = true
			ls.Open = append(ls.Open, NewAccount{OrgID: r.OrgID, Currency: r.Currency})
		}
	}
	return ls
}

// Locked is the state a batch transaction read under its locks: the accounts by organization,
// the holds by id and the stored idempotency keys with what they point at.
type Locked struct {
	Accounts map[string]*Account
	Holds    map[string]*Hold
	Existing map[IdemKey]Replay
}

// Decide applies reqs, in order, to the locked state and returns the batch of rows to write
// and one outcome per request. A request naming a hold acts on the hold's organization (an
// unknown hold is ErrHoldNotFound); reqs themselves are left as they are. cfg's Accounts,
// Holds and Existing are taken from l.
func Decide(cfg BatchConfig, reqs []*Request, l *Locked) (*Batch, []Outcome) {
	cfg.Accounts, cfg.Holds, cfg.Existing = l.Accounts, l.Holds, l.Existing
	b := NewBatch(cfg)
	out := make([]Outcome, len(reqs))
	for i, r := range reqs {
		if r.HoldID != "" {
			resolved := *r
			resolved.OrgID = "" // unknown hold: the batch answers ErrHoldNotFound
			if h, ok := l.Holds[r.HoldID]; ok {
				resolved.OrgID = h.OrgID
			}
			r = &resolved
		}
		res, err := b.Apply(r)
		out[i] = Outcome{Result: res, Err: err}
	}
	return b, out
}

// Empty says whether the batch has nothing to write: replays and refusals only.
func (b *Batch) Empty() bool { return len(b.Touched) == 0 && len(b.Keys) == 0 }

// PlatformAccountName names the platform account of kind and currency on shard: each platform
// account is spread over shards rows, and a batch posts to one of them.
func PlatformAccountName(kind, currency string, shard int) string {
	return fmt.Sprintf("platform:%s:%s:%02d", kind, currency, shard)
}
