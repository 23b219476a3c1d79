package test

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tallyhq/tally/pkg/auth"
	"github.com/tallyhq/tally/pkg/clock"
	"github.com/tallyhq/tally/pkg/config"
	notificationsv1 "github.com/tallyhq/tally/pkg/gen/tally/notifications/v1"
	"github.com/tallyhq/tally/services/ledger/ledgertest"
	"github.com/tallyhq/tally/services/notifications/internal/service"
)

// The expiry reminder follows the service's business clock (Options.Now): credits valid for 30
// days get no reminder today, and one reminder once the clock reaches the last 7 days.
func TestExpiryReminderFollowsTheClock(t *testing.T) {
	s := newStack(t, ledgertest.Options{CreditValidity: config.Period{Duration: 30 * 24 * time.Hour}})
	now := clock.NewManual(time.Now())
	r := s.start(t, func(c *service.Config) { c.Now = now.Now })
	org := randomID(t, "clock")
	admin := member(t, org, "admin-1", auth.RoleAdmin)
	_, err := r.Client(t, admin.token).GetNotificationSettings(t.Context(), &notificationsv1.GetNotificationSettingsRequest{OrgId: org, MemberId: "me"})
	require.NoError(t, err)

	s.credit(t, org, "25")
	msgs := s.requireMessages(t, admin.email, 1)
	require.True(t, strings.HasPrefix(msgs[0].Subject, "Payment received"), msgs[0].Subject)
	require.Zero(t, s.countEmails(t, "org_id = $1 AND kind = 'credits_expiring'", org), "30 days ahead is not within 7 days")

	now.Advance(24 * 24 * time.Hour)
	require.Eventually(t, func() bool {
		return s.countEmails(t, "org_id = $1 AND kind = 'credits_expiring'", org) == 1
	}, waitFor, tick, "no reminder once the clock is 6 days before the expiry")
	msgs = s.requireMessages(t, admin.email, 2)
	expiring := 0
	for _, m := range msgs {
		if strings.Contains(m.Subject, "expire on") {
			expiring++
		}
	}
	require.Equal(t, 1, expiring)
}
