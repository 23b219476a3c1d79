package stripeapi

import (
	"context"
	"errors"
	"net"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/stripe/stripe-go/v76"

	"github.com/tallyhq/tally/services/payments/internal/payment"
)

// TestClassify: a request Stripe refuses for good is permanent; an outage, a rate limit, a
// conflict and a refusal of our own API key are retried.
func TestClassify(t *testing.T) {
	t.Parallel()
	stripeErr := func(code int, typ stripe.ErrorType) error {
		return &stripe.Error{HTTPStatusCode: code, Type: typ, Msg: "message from stripe"}
	}
	for _, tc := range []struct {
		name      string
		err       error
		permanent bool
	}{
		{"invalid request", stripeErr(http.StatusBadRequest, stripe.ErrorTypeInvalidRequest), true},
		{"charge already refunded", stripeErr(http.StatusBadRequest, stripe.ErrorTypeInvalidRequest), true},
		{"card error", stripeErr(http.StatusPaymentRequired, stripe.ErrorTypeCard), true},
		{"no such payment intent", stripeErr(http.StatusNotFound, stripe.ErrorTypeInvalidRequest), true},
		{"our API key refused", stripeErr(http.StatusUnauthorized, stripe.ErrorTypeInvalidRequest), false},
		{"our API key restricted", stripeErr(http.StatusForbidden, stripe.ErrorTypeInvalidRequest), false},
		{"idempotent request in progress", stripeErr(http.StatusConflict, stripe.ErrorTypeIdempotency), false},
		{"rate limited", stripeErr(http.StatusTooManyRequests, stripe.ErrorTypeInvalidRequest), false},
		{"stripe down", stripeErr(http.StatusInternalServerError, stripe.ErrorTypeAPI), false},
		{"bad gateway", stripeErr(http.StatusBadGateway, stripe.ErrorTypeAPI), false},
		{"network", &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}, false},
		{"deadline", context.DeadlineExceeded, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tc.permanent, Permanent(tc.err))
			got := classify("creating refund", tc.err)
			require.Equal(t, tc.permanent, errors.Is(got, payment.ErrRejected), "%v", got)
			require.Equal(t, !tc.permanent, errors.Is(got, payment.ErrUnavailable), "%v", got)
		})
	}
}
