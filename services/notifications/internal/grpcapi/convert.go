package grpcapi

import (
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/tallyhq/tally/pkg/fieldviolation"
	notificationsv1 "github.com/tallyhq/tally/pkg/gen/tally/notifications/v1"
	"github.com/tallyhq/tally/pkg/ids"
	"github.com/tallyhq/tally/pkg/money"
	"github.com/tallyhq/tally/pkg/textcheck"
	"github.com/tallyhq/tally/services/notifications/internal/notify"
)

// Settable fields of NotificationSettings, as update_mask paths.
const (
	pathLowCreditEnabled = "low_credit_alert_enabled"
	pathThreshold        = "low_credit_threshold"
	pathEmail            = "email"
	pathCreditsExpiring  = "credits_expiring_enabled"
	pathCreditsExpired   = "credits_expired_enabled"
	pathPaymentSucceeded = "payment_succeeded_enabled"
	pathRentalSuspended  = "rental_suspended_enabled"
)

const maxPageSize, pageSize = 500, 50

var settablePaths = []string{pathLowCreditEnabled, pathThreshold, pathEmail, pathCreditsExpiring, pathCreditsExpired, pathPaymentSucceeded, pathRentalSuspended}

// patch is a validated settings update: the requested values and the fields to change.
type patch struct {
	values notify.Preferences
	paths  map[string]bool
}

func patchFromProto(s *notificationsv1.NotificationSettings, mask []string) (patch, error) {
	if s == nil {
		return patch{}, fmt.Errorf("%w: settings are required", notify.ErrInvalid)
	}
	p := patch{paths: map[string]bool{}}
	if len(mask) == 0 {
		mask = settablePaths
	}
	for _, path := range mask {
		known := false
		for _, sp := range settablePaths {
			known = known || sp == path
		}
		if !known {
			return patch{}, fmt.Errorf("%w: update_mask: %s is not a settable field", notify.ErrInvalid, textcheck.Quote(path))
		}
		p.paths[path] = true
	}
	p.values = notify.Preferences{
		LowCreditEnabled:        s.GetLowCreditAlertEnabled(),
		EmailOverride:           strings.TrimSpace(s.GetEmail()),
		CreditsExpiringEnabled:  s.GetCreditsExpiringEnabled(),
		CreditsExpiredEnabled:   s.GetCreditsExpiredEnabled(),
		PaymentSucceededEnabled: s.GetPaymentSucceededEnabled(),
		RentalSuspendedEnabled:  s.GetRentalSuspendedEnabled(),
	}
	if t := s.GetLowCreditThreshold(); t != nil && p.paths[pathThreshold] {
		m, err := money.FromProto(t)
		if err != nil {
			return patch{}, fmt.Errorf("%w: %w", notify.ErrInvalid, fieldviolation.Wrap("low_credit_threshold", err))
		}
		p.values.Threshold = m
	}
	return p, nil
}

// touchesAlert reports whether the patch may turn on the low-credit alert or move its
// threshold, which needs the organization's balance.
func (p patch) touchesAlert() bool {
	return p.paths[pathLowCreditEnabled] && p.values.LowCreditEnabled || p.paths[pathThreshold]
}

// apply returns cur with the patched fields replaced.
func (p patch) apply(cur notify.Preferences) notify.Preferences {
	out := cur
	set := func(path string, dst *bool, v bool) {
		if p.paths[path] {
			*dst = v
		}
	}
	set(pathLowCreditEnabled, &out.LowCreditEnabled, p.values.LowCreditEnabled)
	set(pathCreditsExpiring, &out.CreditsExpiringEnabled, p.values.CreditsExpiringEnabled)
	set(pathCreditsExpired, &out.CreditsExpiredEnabled, p.values.CreditsExpiredEnabled)
	set(pathPaymentSucceeded, &out.PaymentSucceededEnabled, p.values.PaymentSucceededEnabled)
	set(pathRentalSuspended, &out.RentalSuspendedEnabled, p.values.RentalSuspendedEnabled)
	if p.paths[pathThreshold] {
		out.Threshold = p.values.Threshold
	}
	if p.paths[pathEmail] {
		out.EmailOverride = p.values.EmailOverride
	}
	return out
}

func settingsToProto(s notify.Settings, bal *notify.Balance) *notificationsv1.NotificationSettings {
	out := &notificationsv1.NotificationSettings{
		OrgId:                   s.OrgID,
		MemberId:                s.MemberID,
		LowCreditAlertEnabled:   s.LowCreditEnabled,
		Email:                   s.EmailOverride,
		CreditsExpiringEnabled:  s.CreditsExpiringEnabled,
		CreditsExpiredEnabled:   s.CreditsExpiredEnabled,
		PaymentSucceededEnabled: s.PaymentSucceededEnabled,
		RentalSuspendedEnabled:  s.RentalSuspendedEnabled,
		EffectiveEmail:          s.Email(),
		LowCreditAlertState:     notificationsv1.LowCreditAlertState_LOW_CREDIT_ALERT_STATE_ARMED,
		UpdateTime:              timestamppb.New(s.UpdatedAt),
	}
	if s.AlertState == notify.AlertFired {
		out.LowCreditAlertState = notificationsv1.LowCreditAlertState_LOW_CREDIT_ALERT_STATE_FIRED
	}
	if s.Threshold.Currency != "" {
		out.LowCreditThreshold = s.Threshold.Proto()
	}
	if bal != nil {
		out.LastKnownBalance = money.ToProto(bal.Balance, bal.Currency)
	}
	return out
}

var (
	kindsToProto = map[notify.EmailKind]notificationsv1.EmailKind{
		notify.KindLowCredit:            notificationsv1.EmailKind_EMAIL_KIND_LOW_CREDIT,
		notify.KindCreditsExpiring:      notificationsv1.EmailKind_EMAIL_KIND_CREDITS_EXPIRING,
		notify.KindCreditsExpired:       notificationsv1.EmailKind_EMAIL_KIND_CREDITS_EXPIRED,
		notify.KindPaymentSucceeded:     notificationsv1.EmailKind_EMAIL_KIND_PAYMENT_SUCCEEDED,
		notify.KindRentalSuspended:      notificationsv1.EmailKind_EMAIL_KIND_RENTAL_SUSPENDED,
		notify.KindRechargeDeclined:     notificationsv1.EmailKind_EMAIL_KIND_RECHARGE_DECLINED,
		notify.KindRechargeAuthRequired: notificationsv1.EmailKind_EMAIL_KIND_RECHARGE_AUTHENTICATION_REQUIRED,
		notify.KindSpendAlert:           notificationsv1.EmailKind_EMAIL_KIND_SPEND_ALERT,
	}
	statusToProto = map[notify.DeliveryStatus]notificationsv1.DeliveryStatus{
		notify.StatusPending: notificationsv1.DeliveryStatus_DELIVERY_STATUS_PENDING,
		notify.StatusSent:    notificationsv1.DeliveryStatus_DELIVERY_STATUS_SENT,
		notify.StatusFailed:  notificationsv1.DeliveryStatus_DELIVERY_STATUS_FAILED,
	}
)

func deliveryToProto(d notify.Delivery) *notificationsv1.Delivery {
	out := &notificationsv1.Delivery{
		Id:              d.ID,
		IdempotencyKey:  d.IdempotencyKey,
		Kind:            kindsToProto[d.Kind],
		OrgId:           d.OrgID,
		MemberId:        d.MemberID,
		To:              d.To,
		Status:          statusToProto[d.Status],
		Attempts:        int32(d.Attempts),
		LastError:       d.LastError,
		MessageId:       d.MessageID,
		CreateTime:      timestamppb.New(d.CreatedAt),
		NextAttemptTime: timestamppb.New(d.NextAttemptAt),
		LedgerSequence:  d.LedgerSeq,
	}
	if !d.SentAt.IsZero() {
		out.SentTime = timestamppb.New(d.SentAt)
	}
	return out
}

func deliveryFilter(req *notificationsv1.ListDeliveriesRequest) (notify.DeliveryFilter, error) {
	f := notify.DeliveryFilter{OrgID: req.GetOrgId(), MemberID: req.GetMemberId(), Limit: int(req.GetPageSize())}
	if f.OrgID != "" {
		if err := ids.OrgID(f.OrgID); err != nil {
			return f, err
		}
	}
	switch {
	case f.Limit < 0:
		return f, fmt.Errorf("%w: page_size must not be negative", notify.ErrInvalid)
	case f.Limit == 0:
		f.Limit = pageSize
	case f.Limit > maxPageSize:
		f.Limit = maxPageSize
	}
	if st := req.GetStatus(); st != notificationsv1.DeliveryStatus_DELIVERY_STATUS_UNSPECIFIED {
		for k, v := range statusToProto {
			if v == st {
				f.Status = k
			}
		}
		if f.Status == "" {
			return f, fmt.Errorf("%w: unknown status %v", notify.ErrInvalid, st)
		}
	}
	if tok := req.GetPageToken(); tok != "" {
		c, err := decodePageToken(tok)
		if err != nil {
			return f, err
		}
		f.After = &c
	}
	return f, nil
}

func encodePageToken(c notify.DeliveryCursor) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(c.CreatedAt.UnixMicro(), 10) + "/" + c.ID))
}

func decodePageToken(tok string) (notify.DeliveryCursor, error) {
	bad := fmt.Errorf("%w: invalid page_token", notify.ErrInvalid)
	raw, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil {
		return notify.DeliveryCursor{}, bad
	}
	micros, id, ok := strings.Cut(string(raw), "/")
	if !ok {
		return notify.DeliveryCursor{}, bad
	}
	n, err := strconv.ParseInt(micros, 10, 64)
	if err != nil {
		return notify.DeliveryCursor{}, bad
	}
	if _, err := uuid.Parse(id); err != nil {
		return notify.DeliveryCursor{}, bad
	}
	return notify.DeliveryCursor{CreatedAt: time.UnixMicro(n), ID: id}, nil
}
