package grpcapi

import (
	"context"
	"fmt"
	"strings"
	"testing"

	moneypb "google.golang.org/genproto/googleapis/type/money"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	"github.com/tallyhq/tally/pkg/auth"
	notificationsv1 "github.com/tallyhq/tally/pkg/gen/tally/notifications/v1"
	"github.com/tallyhq/tally/pkg/server/servertest"
	"github.com/tallyhq/tally/services/notifications/internal/notify"
)

// checkWrite is what the service checks of a write request before it touches the database; it
// returns the accepted text by field.
func checkWrite(ctx context.Context, m proto.Message) (ids, texts map[string]string, err error) {
	switch req := m.(type) {
	case *notificationsv1.UpdateNotificationSettingsRequest:
		mem, err := caller(ctx, req.GetOrgId(), req.GetMemberId(), false)
		if err != nil {
			return nil, nil, err
		}
		p, err := patchFromProto(req.GetSettings(), req.GetUpdateMask().GetPaths())
		if err != nil {
			return nil, nil, err
		}
		prefs := p.apply(notify.Preferences{})
		if err := notify.ValidatePreferences(prefs, mem.AccountEmail, ""); err != nil {
			return nil, nil, err
		}
		return map[string]string{"org_id": mem.OrgID, "member_id": mem.MemberID, "currency": prefs.Threshold.Currency},
			map[string]string{"email": prefs.EmailOverride}, nil
	case *notificationsv1.NotifyRentalSuspendedRequest:
		if err := validateRentalSuspended(req); err != nil {
			return nil, nil, err
		}
		return map[string]string{"org_id": req.GetOrgId(), "instance_id": req.GetInstanceId(), "idempotency_key": req.GetIdempotencyKey()},
			map[string]string{"reason": req.GetReason()}, nil
	}
	panic("not a write request")
}

func adaContext() context.Context {
	return auth.WithClaims(context.Background(), auth.Claims{Subject: "ada", OrgID: "acme", Email: "ada@acme.test", Roles: []auth.Role{auth.RoleAdmin}})
}

func TestWriteRequestValidation(t *testing.T) {
	t.Parallel()
	settings := func(s *notificationsv1.NotificationSettings, paths ...string) proto.Message {
		return &notificationsv1.UpdateNotificationSettingsRequest{OrgId: "acme", MemberId: "me", Settings: s, UpdateMask: &fieldmaskpb.FieldMask{Paths: paths}}
	}
	tests := []struct {
		name    string
		req     proto.Message
		wantErr string
	}{
		{"settings", settings(&notificationsv1.NotificationSettings{LowCreditAlertEnabled: true,
			LowCreditThreshold: &moneypb.Money{CurrencyCode: "USD", Units: 70}}, "low_credit_alert_enabled", "low_credit_threshold"), ""},
		{"lower-case threshold currency", settings(&notificationsv1.NotificationSettings{
			LowCreditThreshold: &moneypb.Money{CurrencyCode: "usd", Units: 70}}, "low_credit_threshold"), `unknown currency "usd"`},
		{"email with bidi", settings(&notificationsv1.NotificationSettings{Email: "ada\u202E@acme.test"}, "email"),
			"email contains a bidirectional control character (U+202E)"},
		{"email with a name", settings(&notificationsv1.NotificationSettings{Email: "Ada <ada@acme.test>"}, "email"), "is not a bare address"},
		{"long unknown mask path echoed in part", settings(&notificationsv1.NotificationSettings{}, strings.Repeat("p", 60)),
			`update_mask: "` + strings.Repeat("p", 32) + `"… is not a settable field`},
		{"org with a space", &notificationsv1.UpdateNotificationSettingsRequest{OrgId: "ac me", MemberId: "me", Settings: &notificationsv1.NotificationSettings{}},
			"org_id must not contain spaces"},
		{"suspension", &notificationsv1.NotifyRentalSuspendedRequest{OrgId: "acme", InstanceId: "gpu-1", IdempotencyKey: "s-1", Reason: "balance\nexhausted"}, ""},
		{"suspension key with a tab", &notificationsv1.NotifyRentalSuspendedRequest{OrgId: "acme", InstanceId: "gpu-1", IdempotencyKey: "s\t1"},
			"idempotency_key contains a control character (U+0009)"},
		{"suspension reason with NUL", &notificationsv1.NotifyRentalSuspendedRequest{OrgId: "acme", InstanceId: "gpu-1", IdempotencyKey: "s-1", Reason: "a\x00"},
			"reason contains a NUL character"},
		{"suspension instance in Cyrillic", &notificationsv1.NotifyRentalSuspendedRequest{OrgId: "acme", InstanceId: "gрu-1", IdempotencyKey: "s-1"},
			"instance_id may hold only printable ASCII characters (found U+0440)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, _, err := checkWrite(adaContext(), tt.req)
			servertest.RequireRefusal(t, Errors, err, tt.wantErr)
		})
	}
}

// FuzzWriteRequests decodes arbitrary bytes as each write RPC's request and checks it as the
// service does: a refusal is InvalidArgument (or PermissionDenied for another member's
// settings), and accepted text keeps the platform's rules.
func FuzzWriteRequests(f *testing.F) {
	for i, m := range []proto.Message{
		&notificationsv1.UpdateNotificationSettingsRequest{OrgId: "acme", MemberId: "me", Settings: &notificationsv1.NotificationSettings{
			LowCreditAlertEnabled: true, LowCreditThreshold: &moneypb.Money{CurrencyCode: "USD", Units: 1}, Email: "a@b.test"}},
		&notificationsv1.NotifyRentalSuspendedRequest{OrgId: "acme", InstanceId: "i-1", IdempotencyKey: "k", Reason: "r"},
	} {
		b, err := proto.Marshal(m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(uint8(i), b)
	}
	requests := []proto.Message{&notificationsv1.UpdateNotificationSettingsRequest{}, &notificationsv1.NotifyRentalSuspendedRequest{}}
	f.Fuzz(func(t *testing.T, op uint8, wire []byte) {
		m := proto.Clone(requests[int(op)%len(requests)])
		if proto.Unmarshal(wire, m) != nil {
			return // refused by the server's codec with InvalidArgument
		}
		ids, texts, err := checkWrite(adaContext(), m)
		if err != nil {
			if code := Errors.Code(err); code != codes.InvalidArgument && code != codes.PermissionDenied {
				t.Fatalf("%T refused with %v: %v", m, code, err)
			}
			return
		}
		servertest.RequireCleanText(t, fmt.Sprintf("%T", m), ids, texts)
	})
}
