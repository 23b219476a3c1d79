package grpcapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/tallyhq/tally/services/payments/internal/payment"
)

// TestToStatus: dependency outages — the ledger, Stripe, PostgreSQL — are Unavailable (a webhook
// answers 503 and Stripe retries), never Internal; their details are not passed on.
func TestToStatus(t *testing.T) {
	t.Parallel()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	for _, tc := range []struct {
		name string
		err  error
		code codes.Code
	}{
		{"ledger or Stripe unavailable", fmt.Errorf("crediting: %w: token is expired", payment.ErrUnavailable), codes.Unavailable},
		{"postgres refuses connections", fmt.Errorf("payment x: %w", &pgconn.ConnectError{}), codes.Unavailable},
		{"postgres shutting down", fmt.Errorf("locking: %w", &pgconn.PgError{Code: "57P01", Message: "terminating connection"}), codes.Unavailable},
		{"postgres out of connections", &pgconn.PgError{Code: "53300", Message: "too many clients"}, codes.Unavailable},
		{"connection lost", fmt.Errorf("query: %w", &net.OpError{Op: "read", Net: "tcp", Err: errors.New("connection reset")}), codes.Unavailable},
		{"a broken query", &pgconn.PgError{Code: "42P01", Message: "relation does not exist"}, codes.Internal},
		{"deadline", fmt.Errorf("query: %w", context.DeadlineExceeded), codes.DeadlineExceeded},
		{"refused for good", fmt.Errorf("refund: %w: charge already refunded", payment.ErrRejected), codes.FailedPrecondition},
		{"unknown", errors.New("boom"), codes.Internal},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			st := status.Convert(toStatus(logger, tc.err))
			require.Equal(t, tc.code, st.Code())
			if tc.code == codes.Unavailable || tc.code == codes.Internal {
				require.NotContains(t, st.Message(), "token", "no dependency detail")
				require.NotContains(t, st.Message(), "relation")
			}
		})
	}
}
