package grpcapi

import (
	"context"
	"errors"
	"fmt"
	"net"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"

	"github.com/tallyhq/tally/pkg/ledgerclient"
	"github.com/tallyhq/tally/pkg/server/servertest"
	"github.com/tallyhq/tally/services/payments/internal/payment"
)

// TestErrorTable: the cases every service answers the same way (a malformed ledger reply is
// Internal and masked, an outage Unavailable, ...).
func TestErrorTable(t *testing.T) {
	t.Parallel()
	servertest.CheckErrorTable(t, Errors)
}

// TestErrors: dependency outages — the ledger, Stripe, PostgreSQL — are Unavailable (a webhook
// answers 503 and Stripe retries), never Internal; their details are not passed on.
func TestErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		err  error
		code codes.Code
	}{
		{"ledger or Stripe unavailable", fmt.Errorf("crediting: %w: token is expired", payment.ErrUnavailable), codes.Unavailable},
		{"ledger token refused", fmt.Errorf("crediting: %w", &ledgerclient.Error{Op: "crediting", Code: codes.Unauthenticated,
			Msg: "token is expired", Kind: ledgerclient.ErrUnavailable, Credentials: true}), codes.Unavailable},
		{"connection lost", fmt.Errorf("query: %w", &net.OpError{Op: "read", Net: "tcp", Err: errors.New("connection reset")}), codes.Unavailable},
		{"a deadline of a dependency", fmt.Errorf("query: %w", context.DeadlineExceeded), codes.Unavailable},
		{"refused for good", fmt.Errorf("refund: %w: charge already refunded", payment.ErrRejected), codes.FailedPrecondition},
		{"bad signature", fmt.Errorf("%w: missing Stripe-Signature", payment.ErrBadSignature), codes.InvalidArgument},
		{"a malformed ledger reply while crediting", fmt.Errorf("crediting: %w", &ledgerclient.Error{Op: "crediting",
			Msg: "token no transaction id", Kind: ledgerclient.ErrBadReply}), codes.Internal},
		{"unknown", errors.New("boom"), codes.Internal},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			st, _ := Errors.Status(t.Context(), tc.err)
			require.Equal(t, tc.code, st.Code())
			if tc.code == codes.Unavailable || tc.code == codes.Internal {
				require.NotContains(t, st.Message(), "token", "no dependency detail")
				require.NotContains(t, st.Message(), "connection reset")
			}
		})
	}
}
