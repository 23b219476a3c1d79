package test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tallyhq/tally/pkg/auth"
	notificationsv1 "github.com/tallyhq/tally/pkg/gen/tally/notifications/v1"
	"github.com/tallyhq/tally/services/ledger/ledgertest"
	"github.com/tallyhq/tally/services/notifications/notificationstest"
)

// seen makes the service see p call it, as the console's header does on every page.
func seen(t *testing.T, r *notificationstest.Notifications, p person) {
	t.Helper()
	_, err := r.Client(t, p.token).GetNotificationSettings(t.Context(), &notificationsv1.GetNotificationSettingsRequest{OrgId: p.org, MemberId: "me"})
	require.NoError(t, err)
}

func reportDecline(t *testing.T, r *notificationstest.Notifications, org, key string, recipients ...string) int32 {
	t.Helper()
	resp, err := r.Client(t, ledgertest.ServiceToken(t, "payments")).NotifyRechargeFailed(t.Context(), &notificationsv1.NotifyRechargeFailedRequest{
		OrgId: org, IdempotencyKey: key, Failure: notificationsv1.RechargeFailure_RECHARGE_FAILURE_DECLINED,
		Amount: usd(t, "25"), ConsecutiveFailures: 1, Recipients: recipients,
	})
	require.NoError(t, err)
	return resp.GetQueued()
}

// A failed recharge emails every admin the service has seen (once each, across retries and a
// restart), plus the saver payments names when the directory does not know them, and no plain
// member; an admin demoted since stops receiving after their next call.
func TestRechargeFailureEmailsTheKnownAdmins(t *testing.T) {
	s := newStack(t, ledgertest.Options{})
	r := s.start(t)
	org := randomID(t, "admins")
	ann := member(t, org, "ann", auth.RoleAdmin)
	bob := member(t, org, "bob", auth.RoleAdmin)
	mia := member(t, org, "mia")
	for _, p := range []person{ann, bob, mia} {
		seen(t, r, p)
	}
	saver := randomID(t, "saver") + "@example.com" // saved the rule, never opened the console

	require.Equal(t, int32(3), reportDecline(t, r, org, "recharge:pay-1", saver, ann.email, mia.email))
	require.Equal(t, int32(0), reportDecline(t, r, org, "recharge:pay-1", saver, ann.email, mia.email), "a retry queues nothing")
	require.NoError(t, r.Stop())
	r = s.start(t)
	require.Equal(t, int32(0), reportDecline(t, r, org, "recharge:pay-1", saver, ann.email, mia.email), "nor one after a restart")

	for _, p := range []person{ann, bob} {
		msgs := s.requireMessages(t, p.email, 1)
		require.Contains(t, msgs[0].Subject, "declined")
	}
	s.requireMessages(t, saver, 1)
	s.requireMessages(t, mia.email, 0)

	// bob is demoted; the service learns it at his next call.
	bob.token = ledgertest.Token(t, auth.Claims{Subject: bob.id, OrgID: org, Email: bob.email, Name: bob.id, Roles: []auth.Role{auth.RoleMember}})
	seen(t, r, bob)
	require.Equal(t, int32(1), reportDecline(t, r, org, "recharge:pay-2", bob.email))
	s.requireMessages(t, ann.email, 2)
	s.requireMessages(t, bob.email, 1)
}
