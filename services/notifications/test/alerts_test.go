package test

import (
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tallyhq/tally/pkg/auth"
	"github.com/tallyhq/tally/pkg/config"
	ledgerv1 "github.com/tallyhq/tally/pkg/gen/tally/ledger/v1"
	notificationsv1 "github.com/tallyhq/tally/pkg/gen/tally/notifications/v1"
	"github.com/tallyhq/tally/services/ledger/ledgertest"
	"github.com/tallyhq/tally/services/notifications/internal/service"
)

// A burst of 1,000 concurrent debits takes the balance from 100 to 10 USD across a 50 USD
// threshold once: exactly one email, with the balance, the threshold and the Add Credits link.
func TestBurstOfDebitsCrossingOnceSendsOneEmail(t *testing.T) {
	s := newStack(t, ledgertest.Options{})
	r := s.start(t)
	org := randomID(t, "burst")
	alice := member(t, org, "alice")
	bob := member(t, org, "bob")
	s.credit(t, org, "100")
	c := r.Client(t, alice.token)
	st := enableAlert(t, c, alice, "50")
	require.Equal(t, notificationsv1.LowCreditAlertState_LOW_CREDIT_ALERT_STATE_ARMED, st.GetLowCreditAlertState())
	require.Equal(t, alice.email, st.GetEffectiveEmail())
	// bob's alert is off: he gets nothing.
	_, err := r.Client(t, bob.token).GetNotificationSettings(t.Context(), &notificationsv1.GetNotificationSettingsRequest{OrgId: org, MemberId: "me"})
	require.NoError(t, err)

	var wg sync.WaitGroup
	errs := make(chan error, 1000)
	for i := range 1000 {
		wg.Go(func() {
			_, err := s.ops.Debit(t.Context(), &ledgerv1.DebitRequest{OrgId: org, Amount: usd(t, "0.09"), IdempotencyKey: org + "-debit-" + strconv.Itoa(i)})
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	bal, err := s.ops.GetBalance(t.Context(), &ledgerv1.GetBalanceRequest{OrgId: org})
	require.NoError(t, err)
	require.Equal(t, int64(10), bal.GetBalance().GetUnits())

	msgs := s.requireMessages(t, alice.email, 1)
	require.Empty(t, messagesTo(t, s.mail, bob.email))
	m := readMessage(t, s.mail, msgs[0].ID)
	require.Contains(t, m.Subject, "Low credit balance for "+org)
	require.Contains(t, m.Text, "Alert threshold: 50.00 USD")
	require.Contains(t, m.Text, "Current balance: ")
	require.Contains(t, m.Text, "Add credits: "+consoleURL+"/billing\r\n")
	require.Contains(t, m.HTML, `href="`+consoleURL+`/billing"`)
	require.Contains(t, m.HTML, `href="`+consoleURL+`/settings/notifications"`)
	require.Contains(t, m.HTML, "Add Credits")

	// The Message-ID is derived from the queued email's unique id.
	var id string
	require.NoError(t, s.db.QueryRow(t.Context(), `SELECT id::text FROM notifications.emails WHERE org_id = $1 AND kind = 'low_credit'`, org).Scan(&id))
	require.Equal(t, id+"@tally.test", m.MessageID)
	require.Equal(t, 1, s.countEmails(t, "org_id = $1", org))
}

// Falling below, topping up above and falling again sends two alerts; debits while below send
// nothing more.
func TestFallTopUpFallSendsTwoEmails(t *testing.T) {
	s := newStack(t, ledgertest.Options{})
	r := s.start(t)
	org := randomID(t, "rearm")
	alice := member(t, org, "alice")
	s.credit(t, org, "100")
	enableAlert(t, r.Client(t, alice.token), alice, "50")

	s.debit(t, org, "60") // 40: fires
	s.debit(t, org, "5")  // 35: still below
	s.debit(t, org, "5")  // 30
	waitMessages(t, s.mail, alice.email, 1)
	s.credit(t, org, "20") // 50: at the threshold, re-arms
	s.debit(t, org, "1")   // 49: fires again
	s.debit(t, org, "1")   // 48
	s.requireMessages(t, alice.email, 2)
	require.Equal(t, 2, s.countEmails(t, "org_id = $1 AND kind = 'low_credit'", org))
}

// Enabling the alert while the balance is already below sends one alert; changing the
// threshold re-evaluates against the latest balance; turning the alert off and on again while
// below sends another.
func TestSettingsChangesReevaluate(t *testing.T) {
	s := newStack(t, ledgertest.Options{})
	r := s.start(t)
	org := randomID(t, "reeval")
	alice := member(t, org, "alice")
	c := r.Client(t, alice.token)
	s.credit(t, org, "10")

	// No event of the organization applied yet is fine: the balance is read from the ledger.
	st := enableAlert(t, c, alice, "20") // 10 < 20: fires at once
	require.Equal(t, notificationsv1.LowCreditAlertState_LOW_CREDIT_ALERT_STATE_FIRED, st.GetLowCreditAlertState())
	require.Equal(t, int64(10), st.GetLastKnownBalance().GetUnits())
	s.requireMessages(t, alice.email, 1)

	steps := []struct {
		threshold string
		state     notificationsv1.LowCreditAlertState
		total     int
	}{
		{"30", notificationsv1.LowCreditAlertState_LOW_CREDIT_ALERT_STATE_FIRED, 1}, // still below: no second alert
		{"8", notificationsv1.LowCreditAlertState_LOW_CREDIT_ALERT_STATE_ARMED, 1},  // above the new threshold: re-armed
		{"10", notificationsv1.LowCreditAlertState_LOW_CREDIT_ALERT_STATE_ARMED, 1}, // at the threshold is not below
		{"15", notificationsv1.LowCreditAlertState_LOW_CREDIT_ALERT_STATE_FIRED, 2}, // below again: fires
	}
	for _, step := range steps {
		st := enableAlert(t, c, alice, step.threshold)
		require.Equal(t, step.state, st.GetLowCreditAlertState(), "threshold %s", step.threshold)
		s.requireMessages(t, alice.email, step.total)
	}

	// Off, then on again while below: one more alert.
	_, err := c.UpdateNotificationSettings(t.Context(), &notificationsv1.UpdateNotificationSettingsRequest{
		OrgId: org, MemberId: "me", Settings: &notificationsv1.NotificationSettings{}, UpdateMask: fieldMask("low_credit_alert_enabled"),
	})
	require.NoError(t, err)
	enableAlert(t, c, alice, "15")
	s.requireMessages(t, alice.email, 3)
}

// Two replicas consume one event stream: one email per crossing. When the replica holding the
// lease stops, the other takes over without losing or repeating a crossing.
func TestTwoReplicasSendOneEmail(t *testing.T) {
	s := newStack(t, ledgertest.Options{})
	a := s.start(t)
	b := s.start(t)
	org := randomID(t, "replicas")
	alice := member(t, org, "alice")
	s.credit(t, org, "100")
	enableAlert(t, b.Client(t, alice.token), alice, "50")
	for range 20 {
		s.debit(t, org, "4") // 100 → 20, crossing 50 once
	}
	s.requireMessages(t, alice.email, 1)

	require.NoError(t, a.Stop())
	s.credit(t, org, "80") // 100: re-arms
	s.debit(t, org, "70")  // 30: fires
	s.requireMessages(t, alice.email, 2)
	require.Equal(t, 2, s.countEmails(t, "org_id = $1", org))
}

// The crossing is recorded (alert state + queued email, one transaction) but the replica stops
// before any sender runs; after a restart the email goes out exactly once.
func TestStopBetweenCrossingAndSendDeliversOnceAfterRestart(t *testing.T) {
	s := newStack(t, ledgertest.Options{})
	noSender := s.start(t, func(c *service.Config) { c.SendWorkers = 0 })
	org := randomID(t, "restart")
	alice := member(t, org, "alice")
	s.credit(t, org, "100")
	enableAlert(t, noSender.Client(t, alice.token), alice, "50")
	s.debit(t, org, "75")
	require.Eventually(t, func() bool {
		return s.countEmails(t, "org_id = $1 AND status = 'pending'", org) == 1
	}, waitFor, tick)
	require.NoError(t, noSender.Stop())
	require.Empty(t, messagesTo(t, s.mail, alice.email))

	s.start(t)
	s.requireMessages(t, alice.email, 1)
	require.Equal(t, 1, s.countEmails(t, "org_id = $1 AND status = 'sent' AND attempts = 1", org))
}

// While the SMTP server is down, the email is retried with backoff; once it is back, the email
// is delivered once.
func TestSMTPDownThenBackDeliversOnce(t *testing.T) {
	s := newStack(t, ledgertest.Options{})
	mp := startOwnMailpit(t)
	s.mail = mp
	r := s.start(t)
	org := randomID(t, "smtpdown")
	alice := member(t, org, "alice")
	s.credit(t, org, "100")
	enableAlert(t, r.Client(t, alice.token), alice, "50")

	mp.stop(t)
	s.debit(t, org, "75")
	require.Eventually(t, func() bool {
		return s.countEmails(t, "org_id = $1 AND status = 'pending' AND attempts >= 3 AND last_error <> ''", org) == 1
	}, waitFor, tick, "the email should be retried while SMTP is down")

	mp.restart(t)
	s.requireMessages(t, alice.email, 1)
	var attempts int
	var messageID string
	require.NoError(t, s.db.QueryRow(t.Context(), `SELECT attempts, message_id FROM notifications.emails WHERE org_id = $1 AND status = 'sent'`, org).Scan(&attempts, &messageID))
	require.GreaterOrEqual(t, attempts, 4)
	require.Equal(t, messageID, messagesTo(t, s.mail, alice.email)[0].MessageID)
}

// The other emails: payment succeeded (CREDIT events), credits expiring within 7 days (one
// reminder per expiry date), credits expired (EXPIRY events) and rental suspended (the
// NotifyRentalSuspended hook). They are on by default for admins and off for members.
func TestOptInEmails(t *testing.T) {
	s := newStack(t, ledgertest.Options{CreditValidity: config.Period{Duration: 4 * time.Second}})
	r := s.start(t)
	org := randomID(t, "optin")
	admin := member(t, org, "admin-1", auth.RoleAdmin)
	plain := member(t, org, "member-1")
	for _, p := range []person{admin, plain} {
		resp, err := r.Client(t, p.token).GetNotificationSettings(t.Context(), &notificationsv1.GetNotificationSettingsRequest{OrgId: org, MemberId: "me"})
		require.NoError(t, err)
		isAdmin := p.id == admin.id
		st := resp.GetSettings()
		require.Equal(t, isAdmin, st.GetPaymentSucceededEnabled())
		require.Equal(t, isAdmin, st.GetCreditsExpiringEnabled())
		require.Equal(t, isAdmin, st.GetCreditsExpiredEnabled())
		require.Equal(t, isAdmin, st.GetRentalSuspendedEnabled())
		require.False(t, st.GetLowCreditAlertEnabled())
	}

	s.credit(t, org, "25") // payment email; expires in 4s, so within 7 days: one reminder
	waitMessages(t, s.mail, admin.email, 2)
	// After 4s the ledger expires the credits: one expired email.
	waitMessages(t, s.mail, admin.email, 3)

	metering := r.Client(t, ledgertest.ServiceToken(t, "instances-metering"))
	for _, queued := range []int32{1, 0} { // the retry with the same key queues nothing
		resp, err := metering.NotifyRentalSuspended(t.Context(), &notificationsv1.NotifyRentalSuspendedRequest{
			OrgId: org, InstanceId: "gpu-42", IdempotencyKey: "suspension-1", Reason: "balance exhausted",
		})
		require.NoError(t, err)
		require.Equal(t, queued, resp.GetQueued())
	}
	msgs := s.requireMessages(t, admin.email, 4)
	require.Empty(t, messagesTo(t, s.mail, plain.email))

	subjects := map[string]string{}
	for _, m := range msgs {
		full := readMessage(t, s.mail, m.ID)
		switch {
		case strings.HasPrefix(m.Subject, "Payment received"):
			subjects["payment"] = full.Text
		case strings.Contains(m.Subject, "expire on"):
			subjects["expiring"] = full.Text
		case strings.HasSuffix(m.Subject, "expired"):
			subjects["expired"] = full.Text
		case strings.Contains(m.Subject, "suspended"):
			subjects["suspended"] = full.Text
		}
	}
	require.Len(t, subjects, 4, "one email of each kind: %v", msgs)
	require.Contains(t, subjects["payment"], "25.00 USD of credits were added to "+org)
	require.Contains(t, subjects["payment"], consoleURL+"/billing")
	require.Contains(t, subjects["expiring"], "(25.00 USD) expire on")
	require.Contains(t, subjects["expired"], "25.00 USD of credits of "+org+" expired")
	require.Contains(t, subjects["suspended"], "gpu-42")

	// Credits granted by ops are not a payment: no "Payment received" email for them.
	_, err := s.ops.Credit(t.Context(), &ledgerv1.CreditRequest{OrgId: org, Amount: usd(t, "5"), IdempotencyKey: randomID(t, "grant"),
		Reason: "goodwill", Source: ledgerv1.CreditSource_CREDIT_SOURCE_GRANT})
	require.NoError(t, err)
	s.settle(t)
	var payments int
	for _, m := range messagesTo(t, s.mail, admin.email) {
		if strings.HasPrefix(m.Subject, "Payment received") {
			payments++
		}
	}
	require.Equal(t, 1, payments)
	require.Contains(t, subjects["suspended"], "Reason: balance exhausted")
}

// A permanent SMTP refusal (5xx) marks the email failed at once instead of retrying it.
func TestPermanentSMTPErrorIsNotRetried(t *testing.T) {
	s := newStack(t, ledgertest.Options{})
	org := randomID(t, "reject")
	alice := member(t, org, "alice")
	s.mail = startRejectingMailpit(t, "someone-else@example.com")
	r := s.start(t)
	s.credit(t, org, "100")
	enableAlert(t, r.Client(t, alice.token), alice, "50")
	s.debit(t, org, "75")
	require.Eventually(t, func() bool {
		return s.countEmails(t, "org_id = $1 AND status = 'failed'", org) == 1
	}, waitFor, tick)
	s.settle(t)
	var attempts int
	var lastErr string
	require.NoError(t, s.db.QueryRow(t.Context(), `SELECT attempts, last_error FROM notifications.emails WHERE org_id = $1`, org).Scan(&attempts, &lastErr))
	require.Equal(t, 1, attempts)
	require.Contains(t, lastErr, "55")
	require.Empty(t, messagesTo(t, s.mail, alice.email))
}
