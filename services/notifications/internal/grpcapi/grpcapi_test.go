package grpcapi

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tallyhq/tally/pkg/auth"
	notificationsv1 "github.com/tallyhq/tally/pkg/gen/tally/notifications/v1"
	"github.com/tallyhq/tally/pkg/money"
	"github.com/tallyhq/tally/services/notifications/internal/notify"
)

// Every method of the service is in the policy, and the policy names no other method.
func TestPolicyCoversEveryMethod(t *testing.T) {
	t.Parallel()
	p := Policy()
	desc := notificationsv1.NotificationsService_ServiceDesc
	methods := map[string]bool{}
	for _, m := range desc.Methods {
		methods[method(m.MethodName)] = true
	}
	for _, s := range desc.Streams {
		methods[method(s.StreamName)] = true
	}
	for m := range methods {
		_, ok := p[m]
		require.True(t, ok, "%s is not in the policy", m)
	}
	for _, row := range p.Table() {
		require.True(t, methods[row.Method], "policy names unknown method %s", row.Method)
		require.False(t, row.Public, "%s must not be public", row.Method)
	}
}

// The policy admits exactly the intended callers (organization checks aside).
func TestPolicyRoles(t *testing.T) {
	t.Parallel()
	p := Policy()
	member := &auth.Claims{Subject: "u", OrgID: "acme", Roles: []auth.Role{auth.RoleMember}}
	admin := &auth.Claims{Subject: "a", OrgID: "acme", Roles: []auth.Role{auth.RoleAdmin}}
	ops := &auth.Claims{Subject: "o", Roles: []auth.Role{auth.RoleOps}}
	metering := &auth.Claims{Subject: "service:instances-metering", Roles: []auth.Role{auth.RoleService}}
	payments := &auth.Claims{Subject: "service:payments", Roles: []auth.Role{auth.RoleService}}
	get := &notificationsv1.GetNotificationSettingsRequest{OrgId: "acme"}
	upd := &notificationsv1.UpdateNotificationSettingsRequest{OrgId: "acme"}
	list := &notificationsv1.ListDeliveriesRequest{}
	susp := &notificationsv1.NotifyRentalSuspendedRequest{OrgId: "acme"}
	cases := []struct {
		method string
		req    any
		allow  []*auth.Claims
		deny   []*auth.Claims
	}{
		{"GetNotificationSettings", get, []*auth.Claims{member, admin, ops}, []*auth.Claims{metering, payments}},
		{"UpdateNotificationSettings", upd, []*auth.Claims{member, admin}, []*auth.Claims{ops, metering, payments}},
		{"ListDeliveries", list, []*auth.Claims{ops}, []*auth.Claims{member, admin, metering, payments}},
		{"NotifyRentalSuspended", susp, []*auth.Claims{ops, metering}, []*auth.Claims{member, admin, payments}},
	}
	for _, tc := range cases {
		t.Run(tc.method, func(t *testing.T) {
			t.Parallel()
			for _, c := range tc.allow {
				require.NoError(t, p.Check(t.Context(), c, method(tc.method), tc.req), c.Subject)
			}
			for _, c := range tc.deny {
				require.Error(t, p.Check(t.Context(), c, method(tc.method), tc.req), c.Subject)
			}
		})
	}
	other := &notificationsv1.GetNotificationSettingsRequest{OrgId: "globex"}
	require.Error(t, p.Check(t.Context(), member, method("GetNotificationSettings"), other), "cross-org")
}

func TestPatch(t *testing.T) {
	t.Parallel()
	cur := notify.Preferences{
		LowCreditEnabled: true, Threshold: money.Money{Nanos: 5, Currency: "USD"}, EmailOverride: "old@example.com",
		CreditsExpiringEnabled: true, PaymentSucceededEnabled: true,
	}
	in := &notificationsv1.NotificationSettings{
		LowCreditAlertEnabled: false, LowCreditThreshold: money.ToProto(7_000_000_000, "USD"), Email: " new@example.com ",
		RentalSuspendedEnabled: true,
	}
	t.Run("mask changes only the named fields", func(t *testing.T) {
		t.Parallel()
		p, err := patchFromProto(in, []string{"low_credit_threshold", "rental_suspended_enabled"})
		require.NoError(t, err)
		got := p.apply(cur)
		want := cur
		want.Threshold = money.Money{Nanos: 7_000_000_000, Currency: "USD"}
		want.RentalSuspendedEnabled = true
		require.Equal(t, want, got)
		require.True(t, p.touchesAlert())
	})
	t.Run("no mask replaces everything", func(t *testing.T) {
		t.Parallel()
		p, err := patchFromProto(in, nil)
		require.NoError(t, err)
		require.Equal(t, notify.Preferences{
			Threshold: money.Money{Nanos: 7_000_000_000, Currency: "USD"}, EmailOverride: "new@example.com", RentalSuspendedEnabled: true,
		}, p.apply(cur))
	})
	t.Run("email only does not need the balance", func(t *testing.T) {
		t.Parallel()
		p, err := patchFromProto(in, []string{"email"})
		require.NoError(t, err)
		require.False(t, p.touchesAlert())
	})
	t.Run("errors", func(t *testing.T) {
		t.Parallel()
		_, err := patchFromProto(nil, nil)
		require.ErrorIs(t, err, notify.ErrInvalid)
		_, err = patchFromProto(in, []string{"alert_state"})
		require.ErrorIs(t, err, notify.ErrInvalid)
		_, err = patchFromProto(&notificationsv1.NotificationSettings{LowCreditThreshold: money.ToProto(1, "ZZZ")}, nil)
		require.ErrorIs(t, err, notify.ErrInvalid)
	})
}

func TestPageToken(t *testing.T) {
	t.Parallel()
	c := notify.DeliveryCursor{CreatedAt: time.UnixMicro(1_800_000_000_123_456), ID: "0b7f6f38-5d0c-4a53-9d0e-0a1b2c3d4e5f"}
	got, err := decodePageToken(encodePageToken(c))
	require.NoError(t, err)
	require.True(t, c.CreatedAt.Equal(got.CreatedAt))
	require.Equal(t, c.ID, got.ID)
	for _, bad := range []string{"x", encodePageToken(notify.DeliveryCursor{ID: "nope"}), "MTIz"} {
		_, err := decodePageToken(bad)
		require.ErrorIs(t, err, notify.ErrInvalid, bad)
	}
}
