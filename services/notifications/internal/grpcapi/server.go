// Package grpcapi serves tally.notifications.v1.NotificationsService: it maps protobuf to the
// notifications domain and resolves the calling member. Handlers return domain errors; the
// server's error interceptor maps them with the table in errors.go.
package grpcapi

import (
	"context"
	"errors"
	"fmt"
	"net/mail"
	"strings"

	"github.com/tallyhq/tally/pkg/auth"
	notificationsv1 "github.com/tallyhq/tally/pkg/gen/tally/notifications/v1"
	"github.com/tallyhq/tally/pkg/ids"
	"github.com/tallyhq/tally/pkg/money"
	"github.com/tallyhq/tally/pkg/textcheck"
	"github.com/tallyhq/tally/services/notifications/internal/app"
	"github.com/tallyhq/tally/services/notifications/internal/notify"
)

// App is the use cases the API serves.
type App interface {
	Settings(ctx context.Context, m notify.Member, self bool) (notify.Settings, *notify.Balance, error)
	UpdateSettings(ctx context.Context, m notify.Member, edit app.SettingsEdit) (notify.Settings, *notify.Balance, error)
	ListDeliveries(ctx context.Context, f notify.DeliveryFilter) ([]notify.Delivery, error)
	NotifyRentalSuspended(ctx context.Context, r notify.RentalSuspended) (int, error)
	NotifyRechargeFailed(ctx context.Context, r notify.RechargeFailed) (int, error)
}

var _ App = (*app.App)(nil)

// Config configures a Server.
type Config struct {
	App App
}

// Server implements NotificationsServiceServer.
type Server struct {
	notificationsv1.UnimplementedNotificationsServiceServer
	cfg Config
}

var _ notificationsv1.NotificationsServiceServer = (*Server)(nil)

// New returns a Server.
func New(cfg Config) (*Server, error) {
	if cfg.App == nil {
		return nil, errors.New("grpcapi: app is required")
	}
	return &Server{cfg: cfg}, nil
}

// me is the member_id alias of the caller.
const me = "me"

// maxReasonLength bounds a suspension reason, in bytes.
const maxReasonLength = 500

// caller resolves the member a settings call is about: "me" (or empty) is the caller; another
// id is refused unless othersAllowed and the caller is ops.
func caller(ctx context.Context, orgID, memberID string, othersAllowed bool) (notify.Member, error) {
	if err := ids.OrgID(orgID); err != nil {
		return notify.Member{}, err
	}
	c, ok := auth.FromContext(ctx)
	if !ok {
		return notify.Member{}, fmt.Errorf("%w: no caller identity", notify.ErrPermissionDenied)
	}
	isMember := c.Has(auth.RoleMember) || c.Has(auth.RoleAdmin)
	if memberID == "" || memberID == me {
		if !isMember || c.OrgID != orgID {
			return notify.Member{}, fmt.Errorf("%w: member_id %q names no member of %s for this caller; pass a member id", notify.ErrInvalid, me, textcheck.Quote(orgID))
		}
		memberID = c.Subject
	}
	if err := ids.MemberID("member_id", memberID); err != nil {
		return notify.Member{}, err
	}
	if isMember && c.OrgID == orgID && memberID == c.Subject {
		return notify.Member{OrgID: orgID, MemberID: memberID, IsAdmin: c.Has(auth.RoleAdmin), AccountEmail: c.Email, Name: c.Name}, nil
	}
	if othersAllowed && c.Has(auth.RoleOps) {
		return notify.Member{OrgID: orgID, MemberID: memberID}, nil
	}
	return notify.Member{}, fmt.Errorf("%w: members read and change only their own notification settings", notify.ErrPermissionDenied)
}

// GetNotificationSettings implements NotificationsServiceServer.
func (s *Server) GetNotificationSettings(ctx context.Context, req *notificationsv1.GetNotificationSettingsRequest) (*notificationsv1.GetNotificationSettingsResponse, error) {
	m, err := caller(ctx, req.GetOrgId(), req.GetMemberId(), true)
	if err != nil {
		return nil, err
	}
	c, _ := auth.FromContext(ctx)
	st, bal, err := s.cfg.App.Settings(ctx, m, m.MemberID == c.Subject && c.OrgID == m.OrgID)
	if err != nil {
		return nil, err
	}
	return &notificationsv1.GetNotificationSettingsResponse{Settings: settingsToProto(st, bal)}, nil
}

// UpdateNotificationSettings implements NotificationsServiceServer.
func (s *Server) UpdateNotificationSettings(ctx context.Context, req *notificationsv1.UpdateNotificationSettingsRequest) (*notificationsv1.UpdateNotificationSettingsResponse, error) {
	m, err := caller(ctx, req.GetOrgId(), req.GetMemberId(), false)
	if err != nil {
		return nil, err
	}
	patch, err := patchFromProto(req.GetSettings(), req.GetUpdateMask().GetPaths())
	if err != nil {
		return nil, err
	}
	st, bal, err := s.cfg.App.UpdateSettings(ctx, m, app.SettingsEdit{Apply: patch.apply, TouchesAlert: patch.touchesAlert()})
	if err != nil {
		return nil, err
	}
	return &notificationsv1.UpdateNotificationSettingsResponse{Settings: settingsToProto(st, bal)}, nil
}

// ListDeliveries implements NotificationsServiceServer.
func (s *Server) ListDeliveries(ctx context.Context, req *notificationsv1.ListDeliveriesRequest) (*notificationsv1.ListDeliveriesResponse, error) {
	f, err := deliveryFilter(req)
	if err != nil {
		return nil, err
	}
	limit := f.Limit
	f.Limit++ // one more tells whether there is a next page
	ds, err := s.cfg.App.ListDeliveries(ctx, f)
	if err != nil {
		return nil, err
	}
	resp := &notificationsv1.ListDeliveriesResponse{}
	if len(ds) > limit {
		ds = ds[:limit]
		last := ds[len(ds)-1]
		resp.NextPageToken = encodePageToken(notify.DeliveryCursor{CreatedAt: last.CreatedAt, ID: last.ID})
	}
	for _, d := range ds {
		resp.Deliveries = append(resp.Deliveries, deliveryToProto(d))
	}
	return resp, nil
}

// NotifyRentalSuspended implements NotificationsServiceServer.
func (s *Server) NotifyRentalSuspended(ctx context.Context, req *notificationsv1.NotifyRentalSuspendedRequest) (*notificationsv1.NotifyRentalSuspendedResponse, error) {
	if err := validateRentalSuspended(req); err != nil {
		return nil, err
	}
	n, err := s.cfg.App.NotifyRentalSuspended(ctx, notify.RentalSuspended{
		OrgID: req.GetOrgId(), InstanceID: req.GetInstanceId(), Key: req.GetIdempotencyKey(), Reason: req.GetReason(),
	})
	if err != nil {
		return nil, err
	}
	return &notificationsv1.NotifyRentalSuspendedResponse{Queued: int32(n)}, nil
}

func validateRentalSuspended(req *notificationsv1.NotifyRentalSuspendedRequest) error {
	if err := ids.OrgID(req.GetOrgId()); err != nil {
		return err
	}
	if err := ids.ID("instance_id", req.GetInstanceId()); err != nil {
		return err
	}
	if err := ids.IdempotencyKey("idempotency_key", req.GetIdempotencyKey()); err != nil {
		return err
	}
	if err := textcheck.FreeText("reason", req.GetReason(), maxReasonLength); err != nil {
		return err
	}
	return nil
}

// maxRecipients bounds the recipients payments names for one failed recharge (the directory's
// admins are added to them).
const maxRecipients = 20

// NotifyRechargeFailed implements NotificationsServiceServer.
func (s *Server) NotifyRechargeFailed(ctx context.Context, req *notificationsv1.NotifyRechargeFailedRequest) (*notificationsv1.NotifyRechargeFailedResponse, error) {
	r, err := rechargeFailedInput(req)
	if err != nil {
		return nil, err
	}
	n, err := s.cfg.App.NotifyRechargeFailed(ctx, r)
	if err != nil {
		return nil, err
	}
	return &notificationsv1.NotifyRechargeFailedResponse{Queued: int32(n)}, nil
}

func rechargeFailedInput(req *notificationsv1.NotifyRechargeFailedRequest) (notify.RechargeFailed, error) {
	if err := ids.OrgID(req.GetOrgId()); err != nil {
		return notify.RechargeFailed{}, err
	}
	if err := ids.IdempotencyKey("idempotency_key", req.GetIdempotencyKey()); err != nil {
		return notify.RechargeFailed{}, err
	}
	if err := textcheck.FreeText("message", req.GetMessage(), maxReasonLength); err != nil {
		return notify.RechargeFailed{}, err
	}
	var auth bool
	switch req.GetFailure() {
	case notificationsv1.RechargeFailure_RECHARGE_FAILURE_DECLINED:
	case notificationsv1.RechargeFailure_RECHARGE_FAILURE_AUTHENTICATION_REQUIRED:
		auth = true
	default:
		return notify.RechargeFailed{}, fmt.Errorf("%w: failure: declined or authentication required", notify.ErrInvalid)
	}
	amount, err := money.FromProto(req.GetAmount())
	if err != nil || amount.Nanos <= 0 || amount.Currency == "" {
		return notify.RechargeFailed{}, fmt.Errorf("%w: amount: a positive amount with its currency is required", notify.ErrInvalid)
	}
	if n := len(req.GetRecipients()); n == 0 || n > maxRecipients {
		return notify.RechargeFailed{}, fmt.Errorf("%w: recipients: 1 to %d addresses", notify.ErrInvalid, maxRecipients)
	}
	for _, to := range req.GetRecipients() {
		if _, err := mail.ParseAddress(to); err != nil || strings.ContainsAny(to, "<>\r\n") {
			return notify.RechargeFailed{}, fmt.Errorf("%w: recipients: %s is not an email address", notify.ErrInvalid, textcheck.Quote(to))
		}
	}
	return notify.RechargeFailed{OrgID: req.GetOrgId(), Key: req.GetIdempotencyKey(), AuthRequired: auth, Amount: amount,
		Failures: int(req.GetConsecutiveFailures()), RuleDisabled: req.GetRuleDisabled(), Message: req.GetMessage(), Recipients: req.GetRecipients()}, nil
}
