package test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	ledgerv1 "github.com/tallyhq/tally/pkg/gen/tally/ledger/v1"
	"github.com/tallyhq/tally/pkg/testenv"
	"github.com/tallyhq/tally/services/ledger/ledgertest"
)

// requireUnavailable requires an Unavailable status that tells the client when to retry.
func requireUnavailable(t *testing.T, err error) {
	t.Helper()
	requireCode(t, err, codes.Unavailable)
	st, _ := status.FromError(err)
	for _, d := range st.Details() {
		if r, ok := d.(*errdetails.RetryInfo); ok && r.GetRetryDelay().AsDuration() > 0 {
			return
		}
	}
	require.Fail(t, "no RetryInfo", "%v", err)
}

// TestFault_PostgresStoppedAndRestarted: with PostgreSQL down, every call answers Unavailable
// (never Internal) with a retry delay; a restart within CommitRetryFor is invisible to a
// writer; after it, the same idempotency key commits once.
func TestFault_PostgresStoppedAndRestarted(t *testing.T) {
	t.Parallel()
	pgsrv := testenv.PrivatePostgres(t)
	rds := testenv.Redis(t)
	dbURL := pgsrv.URL()
	// Two replicas of one ledger: one rides out a restart, the other gives up at once.
	patient := ledgertest.Start(t, ledgertest.Options{DatabaseURL: dbURL, RedisURL: rds.URL(), CommitRetryFor: 2 * time.Minute})
	quick := ledgertest.Start(t, ledgertest.Options{DatabaseURL: dbURL, RedisURL: rds.URL(), CommitRetryFor: 50 * time.Millisecond, DBTimeout: time.Second})
	patientSvc := patient.Client(t, ledgertest.ServiceToken(t, "model-backend"))
	svc := quick.Client(t, ledgertest.ServiceToken(t, "model-backend"))
	ops := quick.Client(t, ledgertest.OpsToken(t))
	credit(t, ops, "o", 100*unit, "seed")
	_, err := svc.Authorize(t.Context(), &ledgerv1.AuthorizeRequest{OrgId: "o", Amount: usd(unit)})
	require.NoError(t, err)

	require.NoError(t, pgsrv.Stop(t.Context()))

	// A write through the patient replica waits out the outage.
	patientDone := make(chan error, 1)
	go func() {
		_, err := patientSvc.Debit(t.Context(), &ledgerv1.DebitRequest{OrgId: "o", Amount: usd(10 * unit), IdempotencyKey: "across-restart"})
		patientDone <- err
	}()

	_, err = svc.Debit(t.Context(), &ledgerv1.DebitRequest{OrgId: "o", Amount: usd(10 * unit), IdempotencyKey: "during-outage"})
	requireUnavailable(t, err)
	_, err = svc.Debit(t.Context(), &ledgerv1.DebitRequest{OrgId: "o", Amount: usd(10 * unit), IdempotencyKey: "during-outage"})
	requireUnavailable(t, err) // refused at once while the database is known down
	_, err = ops.GetBalance(t.Context(), &ledgerv1.GetBalanceRequest{OrgId: "o"})
	requireUnavailable(t, err)
	_, err = ops.ListTransactions(t.Context(), &ledgerv1.ListTransactionsRequest{OrgId: "o"})
	requireUnavailable(t, err)
	// Authorize may answer from the cache while its last epoch reading is recent; after that it
	// cannot show freshness and answers Unavailable — never Internal, never a guess.
	require.Eventually(t, func() bool {
		_, err := svc.Authorize(t.Context(), &ledgerv1.AuthorizeRequest{OrgId: "o", Amount: usd(unit)})
		if err == nil {
			return false
		}
		requireUnavailable(t, err)
		return true
	}, waitFor, tick)

	require.NoError(t, pgsrv.Restart(t.Context()))
	require.NoError(t, <-patientDone, "a PostgreSQL restart is retried transparently")

	// Back: the refused write is retried with its key and commits once.
	require.Eventually(t, func() bool {
		_, err := svc.Debit(t.Context(), &ledgerv1.DebitRequest{OrgId: "o", Amount: usd(10 * unit), IdempotencyKey: "during-outage"})
		if err != nil {
			requireUnavailable(t, err)
		}
		return err == nil
	}, waitFor, tick)
	again, err := svc.Debit(t.Context(), &ledgerv1.DebitRequest{OrgId: "o", Amount: usd(10 * unit), IdempotencyKey: "during-outage"})
	require.NoError(t, err)
	require.Equal(t, 80*unit, nanos(t, again.GetBalance()))
	require.Equal(t, 80*unit, nanos(t, balance(t, ops, "o").GetBalance()))
	require.Eventually(t, func() bool {
		a, err := svc.Authorize(t.Context(), &ledgerv1.AuthorizeRequest{OrgId: "o", Amount: usd(80*unit + 1)})
		return err == nil && !a.GetAllowed() && nanos(t, a.GetAvailable()) == 80*unit
	}, waitFor, tick)
	requireNeverAllowed(t, svc, "o", 80*unit+1, 80*unit, 10)
	requireBalanced(t, dbURL)
}
