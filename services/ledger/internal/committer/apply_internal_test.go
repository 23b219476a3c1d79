package committer

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tallyhq/tally/services/ledger/internal/ledger"
)

// cancellingStore is down on its first attempt, where it also cancels the batch's context, and
// commits on every later one.
type cancellingStore struct {
	cancel   context.CancelFunc
	attempts atomic.Int32
}

func (s *cancellingStore) Apply(_ context.Context, reqs []*ledger.Request) (ledger.Applied, error) {
	if s.attempts.Add(1) == 1 {
		s.cancel()
		return ledger.Applied{}, fmt.Errorf("%w: %w: writing ledger batch: connection reset", ledger.ErrOutcomeUnknown, ledger.ErrUnavailable)
	}
	return ledger.Applied{Outcomes: make([]ledger.Outcome, len(reqs))}, nil
}

// TestApplyStopsRetryingWhenItsContextIsDone requires the retry of an unavailable database
// abandoned at once when the context ends during the backoff (a retry would have committed),
// with the database's error, an unknown outcome reported, and the database not marked down.
func TestApplyStopsRetryingWhenItsContextIsDone(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(t.Context())
	st := &cancellingStore{cancel: cancel}
	var unknown atomic.Bool
	g, err := New(Config{Store: st, RetryFor: time.Hour, OnUnknownOutcome: func() { unknown.Store(true) }, Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	_, err = g.apply(ctx, []*ledger.Request{{Op: ledger.OpDebit, OrgID: "o", Amount: 1, IdempotencyKey: "k"}})
	require.ErrorIs(t, err, ledger.ErrUnavailable)
	require.ErrorIs(t, err, context.Canceled)
	require.Equal(t, int32(1), st.attempts.Load(), "no retry after the context ended")
	require.True(t, unknown.Load(), "the first attempt's outcome is unknown")
	require.False(t, g.down.Load(), "a cancelled retry says nothing about the database")
}
