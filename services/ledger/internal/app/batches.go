package app

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"

	"github.com/google/uuid"

	"github.com/tallyhq/tally/pkg/config"
	"github.com/tallyhq/tally/services/ledger/internal/committer"
	"github.com/tallyhq/tally/services/ledger/internal/ledger"
	"github.com/tallyhq/tally/services/ledger/internal/store"
)

// BatchesConfig configures Batches.
type BatchesConfig struct {
	Store *store.Store
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// Validity is how long credits stay valid (default 3 calendar months).
	Validity config.Period
	// PlatformShards spreads each platform account over this many rows (default 16); each
	// batch posts to one, picked at random.
	PlatformShards int
}

// Batches runs a batch of requests in one transaction (the group committer's Applier): the
// store locks what the requests name, ledger.Decide applies them in memory, the store writes
// the result and commits.
type Batches struct {
	store    *store.Store
	now      func() time.Time
	validity config.Period
	shards   int
}

// NewBatches returns the Batches of cfg, its defaults resolved once.
func NewBatches(cfg BatchesConfig) (*Batches, error) {
	if cfg.Store == nil {
		return nil, errors.New("app: batches need a store")
	}
	b := &Batches{store: cfg.Store, now: cfg.Now, validity: cfg.Validity, shards: cfg.PlatformShards}
	if b.now == nil {
		b.now = time.Now
	}
	if b.validity == (config.Period{}) {
		b.validity = config.Period{Months: 3}
	}
	if b.shards <= 0 {
		b.shards = 16
	}
	return b, nil
}

// Apply runs reqs in one database transaction and commits it. A request refused by the ledger
// rules gets its own error in Outcomes and changes nothing; an error return means nothing at all
// was committed (ledger.ErrOutcomeUnknown: it may have).
func (b *Batches) Apply(ctx context.Context, reqs []*ledger.Request) (ledger.Applied, error) {
	shard := rand.IntN(b.shards) //nolint:gosec // spreads the writes over the shards; no secret
	cfg := ledger.BatchConfig{
		Now:      b.now().UTC().Truncate(time.Microsecond),
		Validity: b.validity,
		PlatformAccount: func(kind, currency string) string {
			return ledger.PlatformAccountName(kind, currency, shard)
		},
		NewID: newID,
	}
	var outcomes []ledger.Outcome
	applied, err := b.store.UpdateAccounts(ctx, ledger.LockSetOf(reqs), func(l *ledger.Locked) (*ledger.Batch, error) {
		batch, out := ledger.Decide(cfg, reqs, l)
		outcomes = out
		return batch, nil
	})
	if err != nil {
		return ledger.Applied{}, err
	}
	applied.Outcomes = outcomes
	return applied, nil
}

var _ committer.Applier = (*Batches)(nil)

// newID returns a fresh UUIDv7, for the rows a batch writes.
func newID() string { return uuid.Must(uuid.NewV7()).String() }
