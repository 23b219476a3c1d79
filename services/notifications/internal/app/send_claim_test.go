package app_test

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tallyhq/tally/services/notifications/internal/app"
	"github.com/tallyhq/tally/services/notifications/internal/notify"
	"github.com/tallyhq/tally/services/notifications/internal/store"
)

// shutdownDuringClaim is an outbox whose claim is interrupted by the worker's shutdown: it
// cancels the worker's context while the claim runs, and, like PostgreSQL, commits the claim
// unless the claim's own context ended.
type shutdownDuringClaim struct {
	stop     context.CancelFunc
	recorded []notify.Attempt
}

func (o *shutdownDuringClaim) ClaimEmail(ctx context.Context, _ time.Time, _ store.EmailClaim) (store.Claimed, bool, error) {
	o.stop()
	if err := ctx.Err(); err != nil {
		return store.Claimed{}, false, err
	}
	return store.Claimed{Delivery: notify.Delivery{Email: notify.Email{ID: "e1", To: "ann@example.com"}}, Token: "t"}, true, nil
}

func (o *shutdownDuringClaim) RecordAttempt(_ context.Context, _ store.Claimed, a notify.Attempt) error {
	o.recorded = append(o.recorded, a)
	return nil
}

type sentConn struct{ sent []string }

func (c *sentConn) Send(_ context.Context, d notify.Delivery) (string, bool, error) {
	c.sent = append(c.sent, d.ID)
	return "<" + d.ID + "@tally>", false, nil
}

// A shutdown arriving while an email is being claimed does not strand the claim: the email is
// sent and its attempt recorded, instead of staying claimed and unsent until its lease ends.
func TestShutdownDuringAClaimStillSendsTheEmail(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	outbox, conn := &shutdownDuringClaim{stop: cancel}, &sentConn{}
	loop, err := app.NewSendLoop(app.SendConfig{
		Outbox: outbox, Dial: func() (app.MailConn, error) { return conn, nil }, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Workers: 1, PollInterval: time.Second, RetryBase: time.Second, RetryMax: time.Minute, MaxAttempts: 3,
		ClaimLease: time.Minute, Replica: "r1",
	})
	require.NoError(t, err)
	sent, err := loop.DeliverNext(ctx, conn)
	require.NoError(t, err)
	require.True(t, sent)
	require.Equal(t, []string{"e1"}, conn.sent)
	require.Len(t, outbox.recorded, 1)
	require.NoError(t, outbox.recorded[0].Err)
}
