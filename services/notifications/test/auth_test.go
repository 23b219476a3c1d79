package test

import (
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"

	"github.com/tallyhq/tally/pkg/auth"
	notificationsv1 "github.com/tallyhq/tally/pkg/gen/tally/notifications/v1"
	"github.com/tallyhq/tally/services/ledger/ledgertest"
)

// Members read and change only their own settings, only in their own organization; ops read
// anyone's and the delivery log; only the instances-metering service (and ops) report
// suspended rentals.
func TestAuthorization(t *testing.T) {
	s := newStack(t, ledgertest.Options{})
	r := s.start(t)
	org := randomID(t, "auth")
	other := randomID(t, "other")
	alice := member(t, org, "alice")
	bob := member(t, org, "bob", auth.RoleAdmin)
	ops := ledgertest.OpsToken(t)

	// bob registers and sets his own email.
	bobc := r.Client(t, bob.token)
	_, err := bobc.UpdateNotificationSettings(t.Context(), &notificationsv1.UpdateNotificationSettingsRequest{
		OrgId: org, MemberId: "me", Settings: &notificationsv1.NotificationSettings{Email: "bob-billing@example.com", PaymentSucceededEnabled: true},
		UpdateMask: fieldMask("email", "payment_succeeded_enabled"),
	})
	require.NoError(t, err)

	get := func(token, org, memberID string) error {
		_, err := r.Client(t, token).GetNotificationSettings(t.Context(), &notificationsv1.GetNotificationSettingsRequest{OrgId: org, MemberId: memberID})
		return err
	}
	update := func(token, org, memberID string) error {
		_, err := r.Client(t, token).UpdateNotificationSettings(t.Context(), &notificationsv1.UpdateNotificationSettingsRequest{
			OrgId: org, MemberId: memberID, Settings: &notificationsv1.NotificationSettings{Email: "attacker@example.com"}, UpdateMask: fieldMask("email"),
		})
		return err
	}
	list := func(token string) error {
		_, err := r.Client(t, token).ListDeliveries(t.Context(), &notificationsv1.ListDeliveriesRequest{})
		return err
	}
	suspend := func(token string) error {
		_, err := r.Client(t, token).NotifyRentalSuspended(t.Context(), &notificationsv1.NotifyRentalSuspendedRequest{OrgId: org, InstanceId: "i-1", IdempotencyKey: randomID(t, "k")})
		return err
	}
	cases := []struct {
		name string
		call func() error
		want codes.Code
	}{
		{"member reads own settings via me", func() error { return get(alice.token, org, "me") }, codes.OK},
		{"member reads own settings via id", func() error { return get(alice.token, org, "alice") }, codes.OK},
		{"member reads another member's settings", func() error { return get(alice.token, org, "bob") }, codes.PermissionDenied},
		{"member changes another member's settings", func() error { return update(alice.token, org, "bob") }, codes.PermissionDenied},
		{"admin changes another member's settings", func() error { return update(bob.token, org, "alice") }, codes.PermissionDenied},
		{"member reads settings in another org", func() error { return get(alice.token, other, "me") }, codes.PermissionDenied},
		{"member changes settings in another org", func() error { return update(alice.token, other, "me") }, codes.PermissionDenied},
		{"no token", func() error { return get("", org, "me") }, codes.Unauthenticated},
		{"ops reads a member's settings", func() error { return get(ops, org, "bob") }, codes.OK},
		{"ops reads an unknown member", func() error { return get(ops, org, "nobody") }, codes.NotFound},
		{"ops has no me", func() error { return get(ops, org, "me") }, codes.InvalidArgument},
		{"ops cannot change settings", func() error { return update(ops, org, "bob") }, codes.PermissionDenied},
		{"member lists deliveries", func() error { return list(alice.token) }, codes.PermissionDenied},
		{"service lists deliveries", func() error { return list(ledgertest.ServiceToken(t, "payments")) }, codes.PermissionDenied},
		{"ops lists deliveries", func() error { return list(ops) }, codes.OK},
		{"member reports a suspension", func() error { return suspend(alice.token) }, codes.PermissionDenied},
		{"another service reports a suspension", func() error { return suspend(ledgertest.ServiceToken(t, "payments")) }, codes.PermissionDenied},
		{"instances-metering reports a suspension", func() error { return suspend(ledgertest.ServiceToken(t, "instances-metering")) }, codes.OK},
		{"ops reports a suspension", func() error { return suspend(ops) }, codes.OK},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			if tc.want == codes.OK {
				require.NoError(t, err)
				return
			}
			requireCode(t, err, tc.want)
		})
	}

	// bob's settings are untouched by the refused calls.
	resp, err := bobc.GetNotificationSettings(t.Context(), &notificationsv1.GetNotificationSettingsRequest{OrgId: org, MemberId: "me"})
	require.NoError(t, err)
	require.Equal(t, "bob-billing@example.com", resp.GetSettings().GetEmail())
	require.Equal(t, "bob", resp.GetSettings().GetMemberId())
}

// Invalid updates are refused with InvalidArgument and change nothing.
func TestUpdateValidation(t *testing.T) {
	s := newStack(t, ledgertest.Options{})
	r := s.start(t)
	org := randomID(t, "valid")
	alice := member(t, org, "alice")
	noEmail := person{id: "carol", org: org, token: ledgertest.Token(t, auth.Claims{Subject: "carol", OrgID: org, Roles: []auth.Role{auth.RoleMember}})}
	s.credit(t, org, "10") // the organization's currency is USD
	cases := []struct {
		name     string
		who      person
		settings *notificationsv1.NotificationSettings
		mask     []string
	}{
		{"no settings", alice, nil, nil},
		{"enable without threshold", alice, &notificationsv1.NotificationSettings{LowCreditAlertEnabled: true}, nil},
		{"negative threshold", alice, &notificationsv1.NotificationSettings{LowCreditAlertEnabled: true, LowCreditThreshold: usd(t, "-1")}, nil},
		{"threshold without currency", alice, &notificationsv1.NotificationSettings{LowCreditThreshold: usd(t, "5")}, nil},
		{"unknown currency", alice, &notificationsv1.NotificationSettings{LowCreditAlertEnabled: true, LowCreditThreshold: usdAs(t, "5", "XXQ")}, nil},
		{"threshold in another currency", alice, &notificationsv1.NotificationSettings{LowCreditAlertEnabled: true, LowCreditThreshold: usdAs(t, "5", "EUR")}, nil},
		{"bad email", alice, &notificationsv1.NotificationSettings{Email: "not an email"}, []string{"email"}},
		{"display-name email", alice, &notificationsv1.NotificationSettings{Email: "Ada <ada@example.com>"}, []string{"email"}},
		{"unknown mask path", alice, &notificationsv1.NotificationSettings{}, []string{"org_id"}},
		{"opt in without any email", noEmail, &notificationsv1.NotificationSettings{PaymentSucceededEnabled: true}, []string{"payment_succeeded_enabled"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.name == "threshold without currency" {
				tc.settings.LowCreditThreshold.CurrencyCode = ""
			}
			_, err := r.Client(t, tc.who.token).UpdateNotificationSettings(t.Context(), &notificationsv1.UpdateNotificationSettingsRequest{
				OrgId: org, MemberId: "me", Settings: tc.settings, UpdateMask: fieldMask(tc.mask...),
			})
			requireCode(t, err, codes.InvalidArgument)
		})
	}
	resp, err := r.Client(t, alice.token).GetNotificationSettings(t.Context(), &notificationsv1.GetNotificationSettingsRequest{OrgId: org})
	require.NoError(t, err)
	require.False(t, resp.GetSettings().GetLowCreditAlertEnabled())
	require.Empty(t, resp.GetSettings().GetEmail())
	require.Equal(t, alice.email, resp.GetSettings().GetEffectiveEmail())

	for _, bad := range []*notificationsv1.NotifyRentalSuspendedRequest{
		{OrgId: org, InstanceId: "i-1"},
		{OrgId: org, IdempotencyKey: "k"},
		{InstanceId: "i-1", IdempotencyKey: "k"},
		{OrgId: "bad org", InstanceId: "i-1", IdempotencyKey: "k"},
	} {
		_, err := r.Client(t, ledgertest.OpsToken(t)).NotifyRentalSuspended(t.Context(), bad)
		requireCode(t, err, codes.InvalidArgument)
	}
}

// The delivery log lists emails newest first, filtered and paged.
func TestListDeliveries(t *testing.T) {
	s := newStack(t, ledgertest.Options{})
	r := s.start(t)
	org := randomID(t, "log")
	admin := member(t, org, "admin-1", auth.RoleAdmin)
	_, err := r.Client(t, admin.token).GetNotificationSettings(t.Context(), &notificationsv1.GetNotificationSettingsRequest{OrgId: org, MemberId: "me"})
	require.NoError(t, err)
	ops := r.Client(t, ledgertest.OpsToken(t))
	for i := range 5 {
		_, err := ops.NotifyRentalSuspended(t.Context(), &notificationsv1.NotifyRentalSuspendedRequest{OrgId: org, InstanceId: "i-" + string(rune('a'+i)), IdempotencyKey: randomID(t, "k")})
		require.NoError(t, err)
	}
	s.requireMessages(t, admin.email, 5)

	var all []*notificationsv1.Delivery
	token := ""
	for {
		resp, err := ops.ListDeliveries(t.Context(), &notificationsv1.ListDeliveriesRequest{OrgId: org, PageSize: 2, PageToken: token})
		require.NoError(t, err)
		require.LessOrEqual(t, len(resp.GetDeliveries()), 2)
		all = append(all, resp.GetDeliveries()...)
		if token = resp.GetNextPageToken(); token == "" {
			break
		}
	}
	require.Len(t, all, 5)
	seen := map[string]bool{}
	for i, d := range all {
		require.False(t, seen[d.GetId()])
		seen[d.GetId()] = true
		require.Equal(t, notificationsv1.DeliveryStatus_DELIVERY_STATUS_SENT, d.GetStatus())
		require.Equal(t, notificationsv1.EmailKind_EMAIL_KIND_RENTAL_SUSPENDED, d.GetKind())
		require.Equal(t, admin.email, d.GetTo())
		require.Equal(t, d.GetId()+"@tally.test", d.GetMessageId())
		require.EqualValues(t, 1, d.GetAttempts())
		if i > 0 {
			require.False(t, d.GetCreateTime().AsTime().After(all[i-1].GetCreateTime().AsTime()), "newest first")
		}
	}
	resp, err := ops.ListDeliveries(t.Context(), &notificationsv1.ListDeliveriesRequest{OrgId: org, Status: notificationsv1.DeliveryStatus_DELIVERY_STATUS_PENDING})
	require.NoError(t, err)
	require.Empty(t, resp.GetDeliveries())
	_, err = ops.ListDeliveries(t.Context(), &notificationsv1.ListDeliveriesRequest{PageToken: "garbage"})
	requireCode(t, err, codes.InvalidArgument)
}
