package payment

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestDecide(t *testing.T) {
	t.Parallel()
	credited := func(s Status) Payment { return Payment{Status: s, CreditedAt: time.Unix(1, 0)} }
	for _, tc := range []struct {
		name string
		p    Payment
		s    Signal
		want Decision
	}{
		{"paid pending credits", Payment{Status: StatusPending}, SignalPaid, Decision{Credit: true, Status: StatusSucceeded}},
		{"paid while awaiting async credits", Payment{Status: StatusPending, AwaitingAsync: true}, SignalPaid, Decision{Credit: true, Status: StatusSucceeded}},
		{"paid after expiry is reviewed, not credited", Payment{Status: StatusExpired}, SignalPaid, Decision{Status: StatusExpired, Review: ReviewPaidAfterExpiry}},
		{"paid after failure still credits", Payment{Status: StatusFailed}, SignalPaid, Decision{Credit: true, Status: StatusSucceeded}},
		{"paid twice credits once", credited(StatusSucceeded), SignalPaid, Decision{Status: StatusSucceeded}},
		{"paid after refund credits nothing", credited(StatusRefunded), SignalPaid, Decision{Status: StatusRefunded}},
		{"unpaid completed awaits", Payment{Status: StatusPending}, SignalAwaitingPayment, Decision{Status: StatusPending, AwaitingAsync: true}},
		{"unpaid completed after success is ignored", credited(StatusSucceeded), SignalAwaitingPayment, Decision{Status: StatusSucceeded}},
		{"async failure fails", Payment{Status: StatusPending, AwaitingAsync: true}, SignalFailed, Decision{Status: StatusFailed}},
		{"late failure is reviewed", credited(StatusSucceeded), SignalFailed, Decision{Status: StatusSucceeded, Review: ReviewLateFailure}},
		{"failure after expiry is ignored", Payment{Status: StatusExpired}, SignalFailed, Decision{Status: StatusExpired}},
		{"expiry expires", Payment{Status: StatusPending}, SignalExpired, Decision{Status: StatusExpired}},
		{"expiry after success is ignored", credited(StatusSucceeded), SignalExpired, Decision{Status: StatusSucceeded}},
		{"expiry of a session paid on the test page is ignored", Payment{Status: StatusPending, LocalPaidAt: time.Unix(1, 0)}, SignalExpired, Decision{Status: StatusPending}},
		{"expiry of a payment due for fulfilment is ignored", Payment{Status: StatusPending, FulfilAfter: time.Unix(1, 0)}, SignalExpired, Decision{Status: StatusPending}},
		{"external refund is reviewed", credited(StatusSucceeded), SignalRefunded, Decision{Status: StatusRefunded, Review: ReviewExternalRefund}},
		{"partial external refund is reviewed", credited(StatusSucceeded), SignalPartiallyRefunded, Decision{Status: StatusSucceeded, Review: ReviewExternalRefund}},
		{"dispute is reviewed", credited(StatusSucceeded), SignalDisputed, Decision{Status: StatusDisputed, Review: ReviewDispute}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tc.want, Decide(tc.p, tc.s))
		})
	}
}

// TestDecideNeverCreditsTwice walks every order of every signal: once credited, nothing credits again,
// and nothing un-credits.
func TestDecideNeverCreditsTwice(t *testing.T) {
	t.Parallel()
	signals := []Signal{SignalPaid, SignalAwaitingPayment, SignalFailed, SignalExpired, SignalRefunded, SignalPartiallyRefunded, SignalDisputed}
	var walk func(p Payment, depth, credits int)
	walk = func(p Payment, depth, credits int) {
		if depth == 0 {
			return
		}
		for _, s := range signals {
			d := Decide(p, s)
			next, n := p, credits
			next.Status, next.AwaitingAsync = d.Status, d.AwaitingAsync
			if d.Credit {
				require.False(t, p.Credited(), "credited twice")
				next.CreditedAt, n = time.Unix(1, 0), n+1
			}
			require.LessOrEqual(t, n, 1)
			walk(next, depth-1, n)
		}
	}
	walk(Payment{Status: StatusPending}, 5, 0)
}

// TestDecideExpiredNeverCredits walks every order of signals after an expiry: nothing credits.
func TestDecideExpiredNeverCredits(t *testing.T) {
	t.Parallel()
	signals := []Signal{SignalPaid, SignalAwaitingPayment, SignalFailed, SignalExpired, SignalRefunded, SignalPartiallyRefunded, SignalDisputed}
	var walk func(p Payment, depth int)
	walk = func(p Payment, depth int) {
		if depth == 0 {
			return
		}
		for _, s := range signals {
			d := Decide(p, s)
			require.False(t, d.Credit, "an expired payment was credited by %s", s)
			next := p
			next.Status, next.AwaitingAsync = d.Status, d.AwaitingAsync
			walk(next, depth-1)
		}
	}
	walk(Payment{Status: StatusExpired}, 4)
}
