package ledgerclient

import (
	"context"
	"errors"
	"fmt"
	"net"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/tallyhq/tally/services/payments/internal/payment"
)

// TestClassify is the rule that keeps paid top-ups out of limbo: only the ledger's definitive
// business refusals are permanent; a refusal of payments' own credentials, an outage, a deadline
// or a failure inside the ledger is retried.
func TestClassify(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		err       error
		permanent bool
	}{
		{"invalid request", status.Error(codes.InvalidArgument, "amount must be positive"), true},
		{"out of range", status.Error(codes.OutOfRange, "too large"), true},
		{"state refuses it", status.Error(codes.FailedPrecondition, "insufficient funds"), true},
		{"key bound to another request", status.Error(codes.AlreadyExists, "idempotency key conflict"), true},
		{"nothing to act on", status.Error(codes.NotFound, "hold not found"), true},
		{"our token expired", status.Error(codes.Unauthenticated, "token is expired"), false},
		{"our token not allowed", status.Error(codes.PermissionDenied, "service:payments may not"), false},
		{"ledger down", status.Error(codes.Unavailable, "connection refused"), false},
		{"deadline", status.Error(codes.DeadlineExceeded, "context deadline exceeded"), false},
		{"failure inside the ledger", status.Error(codes.Internal, "internal error"), false},
		{"overloaded", status.Error(codes.ResourceExhausted, "too many requests"), false},
		{"aborted", status.Error(codes.Aborted, "conflict, retry"), false},
		{"unknown answer", status.Error(codes.Unknown, "?"), false},
		{"not the ledger", status.Error(codes.Unimplemented, "unknown service"), false},
		{"canceled", status.Error(codes.Canceled, "canceled"), false},
		{"local deadline", context.DeadlineExceeded, false},
		{"network", &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tc.permanent, Permanent(tc.err))
			got := classify("crediting", fmt.Errorf("wrapped: %w", tc.err))
			require.Equal(t, tc.permanent, errors.Is(got, payment.ErrRejected), "%v", got)
			require.Equal(t, !tc.permanent, errors.Is(got, payment.ErrUnavailable), "%v", got)
		})
	}
}
