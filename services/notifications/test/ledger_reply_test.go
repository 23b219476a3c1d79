package test

import (
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/tallyhq/tally/pkg/auth"
	notificationsv1 "github.com/tallyhq/tally/pkg/gen/tally/notifications/v1"
	"github.com/tallyhq/tally/pkg/ledgerclient/ledgerclienttest"
	"github.com/tallyhq/tally/pkg/testenv"
	"github.com/tallyhq/tally/services/ledger/ledgertest"
	"github.com/tallyhq/tally/services/notifications/notificationstest"
)

// Enabling the alert of an organization whose events the service has not seen reads its balance
// from the ledger. A reply the service cannot decode is the service's problem, not the caller's:
// Internal with a masked message (never InvalidArgument, never the ledger's text); a ledger
// that cannot answer is Unavailable.
func TestMalformedLedgerReplyIsInternal(t *testing.T) {
	fake := ledgerclienttest.Start(t)
	n := notificationstest.Start(t, notificationstest.Options{
		DatabaseURL: testenv.PostgresURL(t), LedgerAddr: fake.Addr(), Secret: ledgertest.Secret,
	})
	org := randomID(t, "skew")
	alice := member(t, org, "alice", auth.RoleAdmin)
	c := n.Client(t, alice.token)
	enable := func() error {
		_, err := c.UpdateNotificationSettings(t.Context(), &notificationsv1.UpdateNotificationSettingsRequest{
			OrgId: org, MemberId: "me",
			Settings:   &notificationsv1.NotificationSettings{LowCreditAlertEnabled: true, LowCreditThreshold: usd(t, "50")},
			UpdateMask: fieldMask("low_credit_alert_enabled", "low_credit_threshold"),
		})
		return err
	}

	fake.MalformedBalance()
	err := enable()
	requireCode(t, err, codes.Internal)
	require.NotContains(t, status.Convert(err).Message(), "XXX")
	require.NotContains(t, status.Convert(err).Message(), "currency")

	fake.FailAll(codes.Unavailable, "ledger.internal:9091 is restarting")
	err = enable()
	requireCode(t, err, codes.Unavailable)
	require.NotContains(t, status.Convert(err).Message(), "ledger.internal")

	fake.Set(ledgerclienttest.Handlers{}) // well-formed again: 100 USD, above the threshold
	require.NoError(t, enable())
	require.Positive(t, fake.Calls("GetBalance"))
}
