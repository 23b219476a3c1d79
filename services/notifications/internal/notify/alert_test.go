package notify_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tallyhq/tally/pkg/money"
	"github.com/tallyhq/tally/services/notifications/internal/notify"
)

func usd(n money.Nanos) money.Money { return money.Money{Nanos: n, Currency: "USD"} }

// alice has the low-credit alert on at 50 USD, armed, and no other email.
func alice() notify.Settings {
	return notify.Settings{
		OrgID: "acme", MemberID: "alice", AccountEmail: "alice@example.com", AlertState: notify.AlertArmed,
		Preferences: notify.Preferences{LowCreditEnabled: true, Threshold: usd(50)},
	}
}

func debit(seq int64, balance money.Nanos) notify.LedgerEvent {
	return notify.LedgerEvent{Seq: seq, OrgID: "acme", Kind: "debit", Currency: "USD", Balance: balance}
}

func TestApplyEvents(t *testing.T) {
	t.Parallel()
	fired := alice()
	fired.AlertState, fired.AlertGeneration = notify.AlertFired, 1
	eur := alice()
	eur.Threshold = money.Money{Nanos: 50, Currency: "EUR"}
	off := alice()
	off.LowCreditEnabled = false
	noEmail := alice()
	noEmail.AccountEmail = ""
	payer := alice()
	payer.PaymentSucceededEnabled, payer.CreditsExpiredEnabled = true, true
	credit := notify.LedgerEvent{Seq: 3, OrgID: "acme", Kind: notify.EventCredit, Currency: "USD", Balance: 80, Amount: 70, TransactionID: "tx"}
	grant := credit
	grant.Kind = notify.EventGrant
	expiry := notify.LedgerEvent{Seq: 4, OrgID: "acme", Kind: notify.EventExpiry, Currency: "USD", Balance: 0, Amount: -80}

	cases := []struct {
		name   string
		member notify.Settings
		events []notify.LedgerEvent
		// state and generation after the events; kinds of the emails, in order.
		state      notify.AlertState
		generation int64
		kinds      []notify.EmailKind
	}{
		{"above the threshold nothing happens", alice(), []notify.LedgerEvent{debit(1, 60), debit(2, 50)}, notify.AlertArmed, 0, nil},
		{"falling below fires once", alice(), []notify.LedgerEvent{debit(1, 60), debit(2, 49), debit(3, 10), debit(4, -5)},
			notify.AlertFired, 1, []notify.EmailKind{notify.KindLowCredit}},
		{"already fired stays silent below", fired, []notify.LedgerEvent{debit(1, 10), debit(2, 5)}, notify.AlertFired, 1, nil},
		{"rising to the threshold re-arms silently", fired, []notify.LedgerEvent{debit(1, 50)}, notify.AlertArmed, 1, nil},
		{"fall, top-up, fall fires twice", alice(), []notify.LedgerEvent{debit(1, 40), debit(2, 70), debit(3, 30)},
			notify.AlertFired, 2, []notify.EmailKind{notify.KindLowCredit, notify.KindLowCredit}},
		{"another currency is not compared", eur, []notify.LedgerEvent{debit(1, 10)}, notify.AlertArmed, 0, nil},
		{"alert off does not fire", off, []notify.LedgerEvent{debit(1, 10)}, notify.AlertArmed, 0, nil},
		{"no address fires without an email", noEmail, []notify.LedgerEvent{debit(1, 10)}, notify.AlertFired, 1, nil},
		{"payment and expiry emails when opted in", payer, []notify.LedgerEvent{credit, expiry},
			notify.AlertFired, 1, []notify.EmailKind{notify.KindPaymentSucceeded, notify.KindLowCredit, notify.KindCreditsExpired}},
		{"a grant sends no payment email", payer, []notify.LedgerEvent{grant}, notify.AlertArmed, 0, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			members := []notify.Settings{tc.member}
			changed, emails := notify.ApplyEvents(members, tc.events)
			require.Equal(t, tc.member, members[0], "members is not modified")
			after := tc.member
			if len(changed) > 0 {
				require.Len(t, changed, 1)
				after = changed[0]
			} else {
				require.True(t, tc.member.AlertState == tc.state && tc.member.AlertGeneration == tc.generation, "an unchanged member is not returned")
			}
			require.Equal(t, tc.state, after.AlertState)
			require.Equal(t, tc.generation, after.AlertGeneration)
			var kinds []notify.EmailKind
			for _, e := range emails {
				kinds = append(kinds, e.Kind)
				require.Equal(t, "acme", e.OrgID)
				require.Equal(t, "alice", e.MemberID)
				require.Equal(t, "alice@example.com", e.To)
				require.NotEmpty(t, e.IdempotencyKey)
			}
			require.Equal(t, tc.kinds, kinds)
		})
	}
}

// Each crossing has its own idempotency key, and replaying the same events yields the same keys,
// so a replayed batch queues nothing new.
func TestApplyEventsKeysAreStable(t *testing.T) {
	t.Parallel()
	events := []notify.LedgerEvent{debit(1, 40), debit(2, 70), debit(3, 30)}
	_, first := notify.ApplyEvents([]notify.Settings{alice()}, events)
	_, again := notify.ApplyEvents([]notify.Settings{alice()}, events)
	require.Len(t, first, 2)
	require.NotEqual(t, first[0].IdempotencyKey, first[1].IdempotencyKey)
	require.Equal(t, first, again)
	require.Equal(t, int64(1), first[0].LedgerSeq)
	require.Equal(t, money.Nanos(40), first[0].Data.Balance)
	require.Equal(t, money.Nanos(50), first[0].Data.Threshold)
}

func TestChangeSettings(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.FixedZone("CET", 3600))
	disabled := alice()
	disabled.LowCreditEnabled = false
	firedOff := disabled
	firedOff.AlertState = notify.AlertFired
	fired := alice()
	fired.AlertState, fired.AlertGeneration = notify.AlertFired, 3
	on := func(threshold money.Money) notify.Preferences {
		return notify.Preferences{LowCreditEnabled: true, Threshold: threshold}
	}
	below := &notify.Balance{OrgID: "acme", Currency: "USD", Balance: 10}

	cases := []struct {
		name       string
		before     notify.Settings
		prefs      notify.Preferences
		bal        *notify.Balance
		state      notify.AlertState
		generation int64
		fires      bool
	}{
		{"enabling while below fires once", disabled, on(usd(50)), below, notify.AlertFired, 1, true},
		{"enabling while above arms", disabled, on(usd(5)), below, notify.AlertArmed, 0, false},
		{"enabling with an unknown balance arms", disabled, on(usd(50)), nil, notify.AlertArmed, 0, false},
		{"re-enabling ignores the old fired state", firedOff, on(usd(50)), below, notify.AlertFired, 1, true},
		{"enabling in another currency is not compared", disabled, on(money.Money{Nanos: 50, Currency: "EUR"}), below, notify.AlertArmed, 0, false},
		{"raising the threshold while fired stays silent", fired, on(usd(80)), below, notify.AlertFired, 3, false},
		{"lowering the threshold below the balance re-arms", fired, on(usd(8)), below, notify.AlertArmed, 3, false},
		{"an unchanged threshold keeps the state", alice(), on(usd(50)), below, notify.AlertArmed, 0, false},
		{"disabling re-arms", fired, notify.Preferences{Threshold: usd(50)}, below, notify.AlertArmed, 3, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			after, emails := notify.ChangeSettings(tc.before, tc.prefs, tc.bal, now)
			require.Equal(t, tc.prefs, after.Preferences)
			require.Equal(t, tc.state, after.AlertState)
			require.Equal(t, tc.generation, after.AlertGeneration)
			if !tc.fires {
				require.Empty(t, emails)
				return
			}
			require.Len(t, emails, 1)
			e := emails[0]
			require.Equal(t, notify.KindLowCredit, e.Kind)
			require.Equal(t, notify.LowCreditKey("acme", "alice", tc.generation), e.IdempotencyKey)
			require.Equal(t, notify.EmailData{OrgID: "acme", Currency: "USD", Balance: 10, Threshold: 50, OccurredAt: now.UTC()}, e.Data)
			require.Zero(t, e.LedgerSeq)
		})
	}
}

// Enabling while below fires once: the same change applied again (a retried call) and the
// next events below the threshold queue nothing more, until the balance rises.
func TestEnablingWhileBelowFiresOnce(t *testing.T) {
	t.Parallel()
	disabled := alice()
	disabled.LowCreditEnabled = false
	below := &notify.Balance{OrgID: "acme", Currency: "USD", Balance: 10}
	st, emails := notify.ChangeSettings(disabled, alice().Preferences, below, time.Now())
	require.Len(t, emails, 1)
	st, emails = notify.ChangeSettings(st, alice().Preferences, below, time.Now())
	require.Empty(t, emails)
	changed, emails := notify.ApplyEvents([]notify.Settings{st}, []notify.LedgerEvent{debit(1, 5), debit(2, 1)})
	require.Empty(t, changed)
	require.Empty(t, emails)
	changed, emails = notify.ApplyEvents([]notify.Settings{st}, []notify.LedgerEvent{debit(1, 60), debit(2, 1)})
	require.Len(t, changed, 1)
	require.Len(t, emails, 1)
	require.Equal(t, int64(2), changed[0].AlertGeneration)
}

func TestExpiryAndRentalEmailsGoToOptedInMembersWithAnAddress(t *testing.T) {
	t.Parallel()
	in := alice()
	in.CreditsExpiringEnabled, in.RentalSuspendedEnabled = true, true
	out := alice()
	out.MemberID = "bob"
	noAddress := in
	noAddress.MemberID, noAddress.AccountEmail = "carol", ""
	members := []notify.Settings{in, out, noAddress}
	exp := time.Date(2026, 12, 8, 0, 0, 0, 0, time.UTC)
	reminders := notify.ExpiryReminders(notify.Balance{OrgID: "acme", Currency: "USD", Balance: 7, ExpiresAt: exp, Seq: 9}, members)
	require.Len(t, reminders, 1)
	require.Equal(t, notify.ExpiringKey("acme", "alice", exp), reminders[0].IdempotencyKey)
	notices := notify.RentalSuspendedEmails(notify.RentalSuspended{OrgID: "acme", InstanceID: "gpu-1", Key: "k"}, members, nil, time.Now())
	require.Len(t, notices, 1)
	require.Equal(t, notify.RentalSuspendedKey("acme", "alice", "k"), notices[0].IdempotencyKey)
}

// TestSpendAlertEmails: the ledger's spend alert becomes one email per member with an address,
// keyed by the event, so a replayed event queues nothing new.
func TestSpendAlertEmails(t *testing.T) {
	t.Parallel()
	off := alice()
	off.LowCreditEnabled = false
	noEmail := alice()
	noEmail.MemberID, noEmail.AccountEmail = "nobody", ""
	alert := notify.LedgerEvent{Seq: 7, OrgID: "acme", Kind: notify.EventSpendAlert, Currency: "USD", Balance: 900, Amount: 80, SpendLimit: 100}
	_, emails := notify.ApplyEvents([]notify.Settings{off, noEmail}, []notify.LedgerEvent{alert})
	require.Len(t, emails, 1)
	e := emails[0]
	require.Equal(t, notify.KindSpendAlert, e.Kind)
	require.Equal(t, "alice@example.com", e.To)
	require.Equal(t, money.Nanos(80), e.Data.Amount)
	require.Equal(t, money.Nanos(100), e.Data.Threshold)
	require.Equal(t, int64(7), e.LedgerSeq)
	_, again := notify.ApplyEvents([]notify.Settings{off}, []notify.LedgerEvent{alert})
	require.Equal(t, e.IdempotencyKey, again[0].IdempotencyKey)
}
