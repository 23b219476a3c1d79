// Package grpcapi serves tally.notifications.v1.NotificationsService: it maps protobuf to the
// notifications domain, resolves the calling member, and maps domain errors to gRPC statuses
// (in errors.go, the one place that does).
package grpcapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/tallyhq/tally/pkg/auth"
	ledgerv1 "github.com/tallyhq/tally/pkg/gen/tally/ledger/v1"
	notificationsv1 "github.com/tallyhq/tally/pkg/gen/tally/notifications/v1"
	"github.com/tallyhq/tally/pkg/money"
	"github.com/tallyhq/tally/pkg/textcheck"
	"github.com/tallyhq/tally/services/notifications/internal/notify"
	"github.com/tallyhq/tally/services/notifications/internal/store"
)

// Store is the state the API reads and changes.
type Store interface {
	OrgBalance(ctx context.Context, orgID string) (*notify.Balance, error)
	EnsureSettings(ctx context.Context, m store.Member) (notify.Settings, *notify.Balance, error)
	Settings(ctx context.Context, orgID, memberID string) (notify.Settings, *notify.Balance, error)
	UpdateSettings(ctx context.Context, c store.Change) (notify.Settings, *notify.Balance, error)
	ListDeliveries(ctx context.Context, f notify.DeliveryFilter) ([]notify.Delivery, error)
	QueueRentalSuspended(ctx context.Context, orgID, instanceID, key, reason string) (int, error)
}

// BalanceReader reads an organization's balance from the ledger, for organizations whose
// events the service has not seen yet.
type BalanceReader interface {
	GetBalance(ctx context.Context, orgID string) (notify.Balance, error)
}

// Config configures a Server.
type Config struct {
	Store  Store
	Ledger BalanceReader
	Logger *slog.Logger
	// Queued is called after a call queued emails (to wake the sender); optional.
	Queued func()
}

// Server implements NotificationsServiceServer.
type Server struct {
	notificationsv1.UnimplementedNotificationsServiceServer
	cfg Config
}

var _ notificationsv1.NotificationsServiceServer = (*Server)(nil)

// New returns a Server.
func New(cfg Config) (*Server, error) {
	if cfg.Store == nil || cfg.Ledger == nil || cfg.Logger == nil {
		return nil, errors.New("grpcapi: store, ledger and logger are required")
	}
	if cfg.Queued == nil {
		cfg.Queued = func() {}
	}
	return &Server{cfg: cfg}, nil
}

// me is the member_id alias of the caller.
const me = "me"

// Limits of request fields, in bytes.
const (
	maxMemberIDLength = 256
	maxKeyLength      = 200
	maxReasonLength   = 500
)

// caller resolves the member a settings call is about: "me" (or empty) is the caller; another
// id is refused unless othersAllowed and the caller is ops.
func caller(ctx context.Context, orgID, memberID string, othersAllowed bool) (store.Member, error) {
	if err := notify.ValidateID("org_id", orgID); err != nil {
		return store.Member{}, err
	}
	c, ok := auth.FromContext(ctx)
	if !ok {
		return store.Member{}, fmt.Errorf("%w: no caller identity", notify.ErrPermissionDenied)
	}
	isMember := c.Has(auth.RoleMember) || c.Has(auth.RoleAdmin)
	if memberID == "" || memberID == me {
		if !isMember || c.OrgID != orgID {
			return store.Member{}, fmt.Errorf("%w: member_id %q names no member of %s for this caller; pass a member id", notify.ErrInvalid, me, textcheck.Quote(orgID))
		}
		memberID = c.Subject
	}
	if err := textcheck.Identifier("member_id", memberID, maxMemberIDLength); err != nil {
		return store.Member{}, fmt.Errorf("%w: %w", notify.ErrInvalid, err)
	}
	if isMember && c.OrgID == orgID && memberID == c.Subject {
		return store.Member{OrgID: orgID, MemberID: memberID, IsAdmin: c.Has(auth.RoleAdmin), AccountEmail: c.Email}, nil
	}
	if othersAllowed && c.Has(auth.RoleOps) {
		return store.Member{OrgID: orgID, MemberID: memberID}, nil
	}
	return store.Member{}, fmt.Errorf("%w: members read and change only their own notification settings", notify.ErrPermissionDenied)
}

// GetNotificationSettings implements NotificationsServiceServer.
func (s *Server) GetNotificationSettings(ctx context.Context, req *notificationsv1.GetNotificationSettingsRequest) (*notificationsv1.GetNotificationSettingsResponse, error) {
	m, err := caller(ctx, req.GetOrgId(), req.GetMemberId(), true)
	if err != nil {
		return nil, toStatus(s.cfg.Logger, err)
	}
	var st notify.Settings
	var bal *notify.Balance
	if c, _ := auth.FromContext(ctx); m.MemberID == c.Subject && c.OrgID == m.OrgID {
		st, bal, err = s.cfg.Store.EnsureSettings(ctx, m)
	} else {
		st, bal, err = s.cfg.Store.Settings(ctx, m.OrgID, m.MemberID)
	}
	if err != nil {
		return nil, toStatus(s.cfg.Logger, err)
	}
	return &notificationsv1.GetNotificationSettingsResponse{Settings: settingsToProto(st, bal)}, nil
}

// UpdateNotificationSettings implements NotificationsServiceServer.
func (s *Server) UpdateNotificationSettings(ctx context.Context, req *notificationsv1.UpdateNotificationSettingsRequest) (*notificationsv1.UpdateNotificationSettingsResponse, error) {
	m, err := caller(ctx, req.GetOrgId(), req.GetMemberId(), false)
	if err != nil {
		return nil, toStatus(s.cfg.Logger, err)
	}
	patch, err := patchFromProto(req.GetSettings(), req.GetUpdateMask().GetPaths())
	if err != nil {
		return nil, toStatus(s.cfg.Logger, err)
	}
	seed, err := s.seed(ctx, m.OrgID, patch)
	if err != nil {
		return nil, toStatus(s.cfg.Logger, err)
	}
	st, bal, err := s.cfg.Store.UpdateSettings(ctx, store.Change{
		Member: m,
		Seed:   seed,
		Apply: func(cur notify.Settings, bal *notify.Balance) (notify.Preferences, error) {
			p := patch.apply(cur.Preferences)
			orgCurrency := ""
			if bal != nil {
				orgCurrency = bal.Currency
			}
			if err := notify.ValidatePreferences(p, m.AccountEmail, orgCurrency); err != nil {
				return notify.Preferences{}, err
			}
			return p, nil
		},
	})
	if err != nil {
		return nil, toStatus(s.cfg.Logger, err)
	}
	s.cfg.Queued() // the change may have fired an alert
	return &notificationsv1.UpdateNotificationSettingsResponse{Settings: settingsToProto(st, bal)}, nil
}

// seed reads the organization's balance from the ledger when the service has seen none of its
// events yet and the change may turn on or re-evaluate the alert.
func (s *Server) seed(ctx context.Context, orgID string, p patch) (*notify.Balance, error) {
	if !p.touchesAlert() {
		return nil, nil
	}
	known, err := s.cfg.Store.OrgBalance(ctx, orgID)
	if err != nil || known != nil {
		return nil, err
	}
	b, err := s.cfg.Ledger.GetBalance(ctx, orgID)
	if err != nil {
		return nil, err
	}
	return &b, nil
}

// ListDeliveries implements NotificationsServiceServer.
func (s *Server) ListDeliveries(ctx context.Context, req *notificationsv1.ListDeliveriesRequest) (*notificationsv1.ListDeliveriesResponse, error) {
	f, err := deliveryFilter(req)
	if err != nil {
		return nil, toStatus(s.cfg.Logger, err)
	}
	limit := f.Limit
	f.Limit++ // one more tells whether there is a next page
	ds, err := s.cfg.Store.ListDeliveries(ctx, f)
	if err != nil {
		return nil, toStatus(s.cfg.Logger, err)
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
		return nil, toStatus(s.cfg.Logger, err)
	}
	n, err := s.cfg.Store.QueueRentalSuspended(ctx, req.GetOrgId(), req.GetInstanceId(), req.GetIdempotencyKey(), req.GetReason())
	if err != nil {
		return nil, toStatus(s.cfg.Logger, err)
	}
	if n > 0 {
		s.cfg.Queued()
	}
	return &notificationsv1.NotifyRentalSuspendedResponse{Queued: int32(n)}, nil
}

func validateRentalSuspended(req *notificationsv1.NotifyRentalSuspendedRequest) error {
	if err := notify.ValidateID("org_id", req.GetOrgId()); err != nil {
		return err
	}
	if err := notify.ValidateID("instance_id", req.GetInstanceId()); err != nil {
		return err
	}
	if req.GetIdempotencyKey() == "" {
		return fmt.Errorf("%w: idempotency_key is required", notify.ErrInvalid)
	}
	if err := textcheck.Identifier("idempotency_key", req.GetIdempotencyKey(), maxKeyLength); err != nil {
		return fmt.Errorf("%w: %w", notify.ErrInvalid, err)
	}
	if err := textcheck.FreeText("reason", req.GetReason(), maxReasonLength); err != nil {
		return fmt.Errorf("%w: %w", notify.ErrInvalid, err)
	}
	return nil
}

// LedgerBalances reads balances with the ledger's GetBalance.
type LedgerBalances struct {
	Client ledgerv1.LedgerServiceClient
}

// GetBalance implements BalanceReader.
func (l LedgerBalances) GetBalance(ctx context.Context, orgID string) (notify.Balance, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	resp, err := l.Client.GetBalance(ctx, &ledgerv1.GetBalanceRequest{OrgId: orgID})
	if err != nil {
		// %v, not %w: the ledger's status code is not this call's.
		return notify.Balance{}, fmt.Errorf("%w: reading the balance of %s from the ledger: %v", notify.ErrUnavailable, orgID, err)
	}
	bal, err := money.FromProto(resp.GetBalance())
	if err != nil {
		return notify.Balance{}, fmt.Errorf("ledger balance of %s: %w", orgID, err)
	}
	avail, err := money.FromProto(resp.GetAvailable())
	if err != nil {
		return notify.Balance{}, fmt.Errorf("ledger available of %s: %w", orgID, err)
	}
	b := notify.Balance{OrgID: orgID, Currency: bal.Currency, Balance: bal.Nanos, Available: avail.Nanos}
	if resp.GetExpiresAt() != nil {
		b.ExpiresAt = resp.GetExpiresAt().AsTime()
	}
	return b, nil
}
