package payment

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestSessionSignal(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		s    Session
		want Signal
		ok   bool
	}{
		{"paid", Session{Status: "complete", PaymentStatus: "paid"}, SignalPaid, true},
		{"paid, then the session expired", Session{Status: "expired", PaymentStatus: "paid"}, SignalPaid, true},
		{"expired unpaid", Session{Status: "expired", PaymentStatus: "unpaid"}, SignalExpired, true},
		{"open", Session{Status: "open", PaymentStatus: "unpaid"}, "", false},
		{"complete, paid later", Session{Status: "complete", PaymentStatus: "unpaid"}, "", false},
	} {
		sig, ok := tc.s.Signal()
		require.Equal(t, tc.ok, ok, tc.name)
		require.Equal(t, tc.want, sig, tc.name)
	}
}
