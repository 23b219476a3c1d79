package test

import (
	moneypb "google.golang.org/genproto/googleapis/type/money"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	"github.com/tallyhq/tally/pkg/auth"
	notificationsv1 "github.com/tallyhq/tally/pkg/gen/tally/notifications/v1"
	"github.com/tallyhq/tally/pkg/rpcclient"
	"github.com/tallyhq/tally/pkg/textcheck/textchecktest"
	"github.com/tallyhq/tally/services/ledger/ledgertest"
	"github.com/tallyhq/tally/services/notifications/internal/service"
)

// TestAttack_BadBytes sends NUL, invalid UTF-8, bidi and control characters in every string field
// of every NotificationsService request, each found from the proto descriptors, to a real
// notifications service: each is InvalidArgument naming the field, and no row is written.
func TestAttack_BadBytes(t *testing.T) {
	t.Parallel()
	s := newStack(t, ledgertest.Options{})
	r := s.start(t)
	conn, err := rpcclient.Dial(r.Addr, "")
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	org := randomID(t, "bad-bytes")
	ada := member(t, org, "ada", auth.RoleAdmin)
	textchecktest.Attack(t, textchecktest.Target{
		Service: notificationsv1.File_tally_notifications_v1_notifications_proto.Services().ByName("NotificationsService"),
		Conn:    conn,
		Rows:    textchecktest.RowCounts(s.dbURL, service.Schema),
		Calls: map[string]textchecktest.Call{
			"GetNotificationSettings": {Token: ada.token, Request: &notificationsv1.GetNotificationSettingsRequest{OrgId: org, MemberId: "me"}},
			"UpdateNotificationSettings": {Token: ada.token, Request: &notificationsv1.UpdateNotificationSettingsRequest{OrgId: org, MemberId: "me",
				Settings:   &notificationsv1.NotificationSettings{CreditsExpiringEnabled: true, Email: "billing@acme.test"},
				UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"credits_expiring_enabled", "email"}}}},
			"ListDeliveries": {Token: ledgertest.OpsToken(t), Request: &notificationsv1.ListDeliveriesRequest{OrgId: org, PageSize: 10}},
			"NotifyRentalSuspended": {Token: ledgertest.ServiceToken(t, "instances-metering"), Request: &notificationsv1.NotifyRentalSuspendedRequest{
				OrgId: org, InstanceId: "gpu-42", IdempotencyKey: "suspension-1", Reason: "balance exhausted"}},
			"NotifyRechargeFailed": {Token: ledgertest.ServiceToken(t, "payments"), Request: &notificationsv1.NotifyRechargeFailedRequest{
				OrgId: org, IdempotencyKey: "recharge:1", Failure: notificationsv1.RechargeFailure_RECHARGE_FAILURE_DECLINED,
				Amount: &moneypb.Money{CurrencyCode: "USD", Units: 20}, ConsecutiveFailures: 1, Recipients: []string{"admin@acme.test"},
				Message: "Your card was declined."}},
		},
	})
}
