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

// Batches runs a batch of requests in one transaction (the group committer's Applier): the
// store locks what the requests name, ledger.Decide applies them in memory, the store writes
// the result and commits.
type Batches struct {
	Store *store.Store
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// Validity is how long credits stay valid (default 3 calendar months).
	Validity config.Period
	// PlatformShards spreads each platform account over this many rows (default 16); each
	// batch posts to one, picked at random.
	PlatformShards int
}

// Apply runs reqs in one database transaction and commits it. A request refused by the ledger
// rules gets its own error in Outcomes and changes nothing; an error return means nothing at all
// was committed (ledger.ErrOutcomeUnknown: it may have).
func (b *Batches) Apply(ctx context.Context, reqs []*ledger.Request) (ledger.Applied, error) {
	if b.Store == nil {
		return ledger.Applied{}, errors.New("app: batches need a store")
	}
	now := time.Now
	if b.Now != nil {
		now = b.Now
	}
	validity := b.Validity
	if validity == (config.Period{}) {
		validity = config.Period{Months: 3}
	}
	shards := b.PlatformShards
	if shards <= 0 {
		shards = 16
	}
	shard := rand.IntN(shards) //nolint:gosec // spreads the writes over the shards; no secret
	cfg := ledger.BatchConfig{
		Now:      now().UTC().Truncate(time.Microsecond),
		Validity: validity,
		PlatformAccount: func(kind, currency string) string {
			return ledger.PlatformAccountName(kind, currency, shard)
		},
		NewID: func() string { return uuid.Must(uuid.NewV7()).String() },
	}
	var outcomes []ledger.Outcome
	applied, err := b.Store.UpdateAccounts(ctx, ledger.LockSetOf(reqs), func(l *ledger.Locked) (*ledger.Batch, error) {
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
