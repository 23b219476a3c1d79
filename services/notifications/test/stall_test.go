package test

import (
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tallyhq/tally/pkg/auth"
	notificationsv1 "github.com/tallyhq/tally/pkg/gen/tally/notifications/v1"
	"github.com/tallyhq/tally/pkg/testenv"
	"github.com/tallyhq/tally/services/ledger/ledgertest"
	"github.com/tallyhq/tally/services/notifications/internal/service"
)

// While every sender of a replica hangs on an SMTP server that accepts and never answers, the
// replica holds no transaction open across the exchange: the emails it claimed are the only
// ones it holds, another replica sends all the others meanwhile and the API keeps answering;
// once the hung replica stops, its emails are sent by the other, each exactly once.
func TestAStalledSMTPServerHoldsNoTransaction(t *testing.T) {
	s := newStack(t, ledgertest.Options{})
	stall := testenv.StartStalled(t) // an SMTP server that accepts connections and never says a word
	host, port, err := net.SplitHostPort(stall.Addr)
	require.NoError(t, err)
	p, err := strconv.Atoi(port)
	require.NoError(t, err)
	hung := s.start(t, func(c *service.Config) {
		c.SMTP.Host, c.SMTP.Port, c.SMTP.Timeout = host, p, 2*time.Second
		c.ClaimLease, c.Replica = 4*time.Second, "hung"
	})

	org := randomID(t, "stall")
	admins := make([]person, 6)
	for i := range admins {
		admins[i] = member(t, org, "admin-"+strconv.Itoa(i), auth.RoleAdmin)
		_, err := hung.Client(t, admins[i].token).GetNotificationSettings(t.Context(), &notificationsv1.GetNotificationSettingsRequest{OrgId: org, MemberId: "me"})
		require.NoError(t, err)
	}
	resp, err := hung.Client(t, ledgertest.ServiceToken(t, "instances-metering")).NotifyRentalSuspended(t.Context(),
		&notificationsv1.NotifyRentalSuspendedRequest{OrgId: org, InstanceId: "gpu-1", IdempotencyKey: "suspension-1", Reason: "test"})
	require.NoError(t, err)
	require.Equal(t, int32(len(admins)), resp.GetQueued())
	for range 2 { // both senders of the replica are stuck in an SMTP exchange
		select {
		case <-stall.Accepted:
		case <-time.After(waitFor):
			require.FailNow(t, "the senders never reached the SMTP server")
		}
	}

	// No session of the service keeps a transaction open for the length of the exchange.
	require.Never(t, func() bool {
		var n int
		require.NoError(t, s.db.QueryRow(t.Context(), `SELECT count(*) FROM pg_stat_activity
WHERE application_name = 'tally-notifications' AND now() - xact_start > interval '500 milliseconds'`).Scan(&n))
		return n > 0
	}, 1500*time.Millisecond, 50*time.Millisecond, "a transaction stayed open across the SMTP exchange")
	require.LessOrEqual(t, s.countEmails(t, "claimed_by = 'hung'"), 2, "the hung replica holds only what it is sending")

	// Others proceed meanwhile: the API answers and a second replica sends the other emails.
	_, err = hung.Client(t, admins[0].token).UpdateNotificationSettings(t.Context(), &notificationsv1.UpdateNotificationSettingsRequest{
		OrgId: org, MemberId: "me", Settings: &notificationsv1.NotificationSettings{PaymentSucceededEnabled: false},
		UpdateMask: fieldMask("payment_succeeded_enabled"),
	})
	require.NoError(t, err)
	s.start(t)
	require.Eventually(t, func() bool {
		return s.countEmails(t, "org_id = $1 AND status = 'sent'", org) >= len(admins)-2
	}, waitFor, tick, "the healthy replica did not send the other emails while the hung one was stuck")

	require.NoError(t, hung.Stop())
	for _, a := range admins {
		s.requireMessages(t, a.email, 1)
	}
	require.Equal(t, len(admins), s.countEmails(t, "org_id = $1 AND status = 'sent' AND claimed_by IS NULL", org))
}
