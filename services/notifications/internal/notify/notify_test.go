package notify_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tallyhq/tally/pkg/money"
	"github.com/tallyhq/tally/services/notifications/internal/notify"
)

func TestEvaluate(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name      string
		state     notify.AlertState
		balance   money.Nanos
		next      notify.AlertState
		wantFired bool
	}{
		{"armed and above stays armed", notify.AlertArmed, 60, notify.AlertArmed, false},
		{"armed at the threshold stays armed", notify.AlertArmed, 50, notify.AlertArmed, false},
		{"armed and below fires", notify.AlertArmed, 49, notify.AlertFired, true},
		{"fired and below stays fired silently", notify.AlertFired, 10, notify.AlertFired, false},
		{"fired and back at the threshold re-arms", notify.AlertFired, 50, notify.AlertArmed, false},
		{"fired and above re-arms", notify.AlertFired, 70, notify.AlertArmed, false},
		{"negative balance fires", notify.AlertArmed, -5, notify.AlertFired, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			next, fired := notify.Evaluate(tc.state, tc.balance, 50)
			require.Equal(t, tc.next, next)
			require.Equal(t, tc.wantFired, fired)
		})
	}
}

// A sequence of balances fires once per crossing, however many observations lie between.
func TestEvaluateOncePerCrossing(t *testing.T) {
	t.Parallel()
	balances := []money.Nanos{100, 60, 49, 40, 30, 49, 50, 51, 49, 10, 0, -1, 50, 49}
	state, fired := notify.AlertArmed, 0
	for _, b := range balances {
		var f bool
		state, f = notify.Evaluate(state, b, 50)
		if f {
			fired++
		}
	}
	require.Equal(t, 3, fired)
	require.Equal(t, notify.AlertFired, state)
}

func TestReconsider(t *testing.T) {
	t.Parallel()
	usd := func(n money.Nanos) money.Money { return money.Money{Nanos: n, Currency: "USD"} }
	settings := func(enabled bool, threshold money.Money, state notify.AlertState) notify.Settings {
		return notify.Settings{Preferences: notify.Preferences{LowCreditEnabled: enabled, Threshold: threshold}, AlertState: state}
	}
	bal := &notify.Balance{Currency: "USD", Balance: 10}
	cases := []struct {
		name          string
		before, after notify.Settings
		bal           *notify.Balance
		next          notify.AlertState
		fire          bool
	}{
		{"enable while below fires", settings(false, usd(0), notify.AlertArmed), settings(true, usd(20), notify.AlertArmed), bal, notify.AlertFired, true},
		{"enable while above arms", settings(false, usd(0), notify.AlertArmed), settings(true, usd(5), notify.AlertArmed), bal, notify.AlertArmed, false},
		{"enable with unknown balance arms", settings(false, usd(0), notify.AlertArmed), settings(true, usd(20), notify.AlertArmed), nil, notify.AlertArmed, false},
		{"re-enable ignores the old fired state", settings(false, usd(20), notify.AlertFired), settings(true, usd(20), notify.AlertFired), bal, notify.AlertFired, true},
		{"raise threshold above balance fires", settings(true, usd(5), notify.AlertArmed), settings(true, usd(20), notify.AlertArmed), bal, notify.AlertFired, true},
		{"raise threshold while fired stays silent", settings(true, usd(20), notify.AlertFired), settings(true, usd(30), notify.AlertFired), bal, notify.AlertFired, false},
		{"lower threshold below balance re-arms", settings(true, usd(20), notify.AlertFired), settings(true, usd(8), notify.AlertFired), bal, notify.AlertArmed, false},
		{"unchanged threshold keeps the state", settings(true, usd(20), notify.AlertArmed), settings(true, usd(20), notify.AlertArmed), bal, notify.AlertArmed, false},
		{"disable re-arms", settings(true, usd(20), notify.AlertFired), settings(false, usd(20), notify.AlertFired), bal, notify.AlertArmed, false},
		{"other currency is not compared", settings(false, usd(0), notify.AlertArmed), settings(true, money.Money{Nanos: 20, Currency: "EUR"}, notify.AlertArmed), bal, notify.AlertArmed, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			next, fire := notify.Reconsider(tc.before, tc.after, tc.bal)
			require.Equal(t, tc.next, next)
			require.Equal(t, tc.fire, fire)
		})
	}
}

func TestValidatePreferences(t *testing.T) {
	t.Parallel()
	usd := money.Money{Nanos: 5, Currency: "USD"}
	cases := []struct {
		name    string
		p       notify.Preferences
		account string
		org     string
		ok      bool
	}{
		{"defaults", notify.Preferences{}, "", "", true},
		{"alert with threshold", notify.Preferences{LowCreditEnabled: true, Threshold: usd}, "a@example.com", "USD", true},
		{"zero threshold", notify.Preferences{LowCreditEnabled: true, Threshold: money.Money{Currency: "USD"}}, "a@example.com", "USD", true},
		{"alert without threshold", notify.Preferences{LowCreditEnabled: true}, "a@example.com", "", false},
		{"negative threshold", notify.Preferences{Threshold: money.Money{Nanos: -1, Currency: "USD"}}, "a@example.com", "", false},
		{"threshold without currency", notify.Preferences{Threshold: money.Money{Nanos: 1}}, "a@example.com", "", false},
		{"threshold in another currency", notify.Preferences{LowCreditEnabled: true, Threshold: usd}, "a@example.com", "EUR", false},
		{"override email", notify.Preferences{PaymentSucceededEnabled: true, EmailOverride: "b@example.com"}, "", "", true},
		{"bad override", notify.Preferences{EmailOverride: "b at example.com"}, "a@example.com", "", false},
		{"opt-in without any email", notify.Preferences{CreditsExpiredEnabled: true}, "", "", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := notify.ValidatePreferences(tc.p, tc.account, tc.org)
			if tc.ok {
				require.NoError(t, err)
			} else {
				require.ErrorIs(t, err, notify.ErrInvalid)
			}
		})
	}
}

func TestIdempotencyKeysAreUnambiguous(t *testing.T) {
	t.Parallel()
	require.NotEqual(t, notify.LowCreditKey("a/b", "c", 1), notify.LowCreditKey("a", "b/c", 1))
	require.NotEqual(t, notify.LowCreditKey("a", "b", 1), notify.LowCreditKey("a", "b", 2))
	require.NotEqual(t, notify.RentalSuspendedKey("o", "m/x", "k"), notify.RentalSuspendedKey("o", "m", "x/k"))
	require.Equal(t, "low_credit/acme/user:1/3", notify.LowCreditKey("acme", "user:1", 3))
	require.Equal(t, "low_credit/a%2Fb/c/1", notify.LowCreditKey("a/b", "c", 1))
}

func TestDefaultPreferences(t *testing.T) {
	t.Parallel()
	admin, member := notify.DefaultPreferences(true), notify.DefaultPreferences(false)
	for _, k := range notify.EmailKinds {
		if k == notify.KindSpendAlert {
			// The organization's admins chose it by setting the limit: every member gets it.
			require.True(t, member.Wants(k))
			require.True(t, admin.Wants(k))
			require.True(t, notify.Preferences{}.Wants(k))
			continue
		}
		optIn := k != notify.KindRechargeDeclined && k != notify.KindRechargeAuthRequired
		require.False(t, member.Wants(k), "member %s", k)
		require.Equal(t, optIn && k != notify.KindLowCredit, admin.Wants(k), "admin %s", k)
	}
}
