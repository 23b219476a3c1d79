package app_test

import (
	"fmt"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	ledgerv1 "github.com/tallyhq/tally/pkg/gen/tally/ledger/v1"
	"github.com/tallyhq/tally/pkg/ledgerclient"
	"github.com/tallyhq/tally/pkg/ledgerclient/ledgerclienttest"
	"github.com/tallyhq/tally/pkg/money"
	"github.com/tallyhq/tally/pkg/pg"
	"github.com/tallyhq/tally/pkg/testenv"
	"github.com/tallyhq/tally/services/notifications/internal/app"
	"github.com/tallyhq/tally/services/notifications/internal/store"
	"github.com/tallyhq/tally/services/notifications/migrations"
)

// An event the follower cannot decode (version skew) is never applied: the events before it
// are, the cursor stops before it, and the follower resumes from there.
func TestFollowerStopsBeforeAMalformedEvent(t *testing.T) {
	fake := ledgerclienttest.Start(t)
	var watches atomic.Int64
	fake.Set(ledgerclienttest.Handlers{Watch: func(r *ledgerv1.WatchEventsRequest, s ledgerv1.LedgerService_WatchEventsServer) error {
		watches.Add(1)
		event := func(seq int64, m *ledgerv1.BalanceEvent) *ledgerv1.WatchEventsResponse {
			m.Sequence, m.OrgId, m.Kind = seq, "acme", ledgerv1.EventKind_EVENT_KIND_DEBIT
			m.Shard, m.Cursor = "main", fmt.Sprintf("main:%d", seq)
			return &ledgerv1.WatchEventsResponse{Event: m}
		}
		for i, m := range []*ledgerv1.BalanceEvent{
			{Balance: money.ToProto(90*money.NanosPerUnit, "USD")},
			{Balance: ledgerclienttest.MalformedMoney()},
		} {
			if seq := int64(i + 1); fmt.Sprintf("main:%d", seq) > r.GetAfterCursor() {
				if err := s.Send(event(seq, m)); err != nil {
					return err
				}
			}
		}
		<-s.Context().Done()
		return nil
	}})
	pool, err := pg.Connect(t.Context(), testenv.PostgresURL(t), "notifications", 5)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	require.NoError(t, pg.Migrate(t.Context(), pool, "notifications", migrations.FS))
	st, err := store.New(pool)
	require.NoError(t, err)
	c, err := ledgerclient.New(ledgerclient.Config{Conn: fake.Conn(t)})
	require.NoError(t, err)
	f, err := app.NewFollower(app.FollowerConfig{
		Ledger: app.Ledger{Client: c}, Store: st, Lease: noLease{}, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		MaxBatch: 10, RetryDelay: 10 * time.Millisecond,
	})
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() { done <- f.Run(t.Context()) }()
	t.Cleanup(func() { require.NoError(t, <-done) }) // t.Context ends first

	require.Eventually(t, func() bool { return watches.Load() >= 3 }, 30*time.Second, 10*time.Millisecond, "the follower resumes")
	cur, err := st.Cursor(t.Context())
	require.NoError(t, err)
	require.Equal(t, "main:1", cur, "applied up to the event before the malformed one")
	bal, err := st.OrgBalance(t.Context(), "acme")
	require.NoError(t, err)
	require.Equal(t, money.Nanos(90*money.NanosPerUnit), bal.Balance)
}
