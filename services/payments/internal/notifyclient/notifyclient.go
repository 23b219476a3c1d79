// Package notifyclient hands the emails of failed auto-recharges to the notifications service.
package notifyclient

import (
	"context"
	"errors"
	"fmt"
	"time"

	notificationsv1 "github.com/tallyhq/tally/pkg/gen/tally/notifications/v1"
	"github.com/tallyhq/tally/services/payments/internal/app"
	"github.com/tallyhq/tally/services/payments/internal/payment"
)

// Client calls the notifications service.
type Client struct {
	c       notificationsv1.NotificationsServiceClient
	timeout time.Duration
}

var _ app.Notifier = (*Client)(nil)

// New returns a Client over c whose calls each have timeout.
func New(c notificationsv1.NotificationsServiceClient, timeout time.Duration) (*Client, error) {
	if c == nil || timeout <= 0 {
		return nil, errors.New("notifyclient: client and a positive timeout are required")
	}
	return &Client{c: c, timeout: timeout}, nil
}

var failures = map[payment.ChargeStatus]notificationsv1.RechargeFailure{
	payment.ChargeDeclined:               notificationsv1.RechargeFailure_RECHARGE_FAILURE_DECLINED,
	payment.ChargeAuthenticationRequired: notificationsv1.RechargeFailure_RECHARGE_FAILURE_AUTHENTICATION_REQUIRED,
}

// RechargeFailed implements app.Notifier; the payment id is the idempotency key.
func (c *Client) RechargeFailed(ctx context.Context, f app.RechargeFailure) error {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	_, err := c.c.NotifyRechargeFailed(ctx, &notificationsv1.NotifyRechargeFailedRequest{
		OrgId: f.OrgID, IdempotencyKey: "recharge:" + f.PaymentID, Failure: failures[f.Reason], Amount: f.Amount.Proto(),
		ConsecutiveFailures: int32(f.Failures), RuleDisabled: f.Disabled, Recipients: f.Recipients, Message: f.Message,
	})
	if err != nil {
		return fmt.Errorf("notifying the failed recharge %s: %w: %w", f.PaymentID, payment.ErrUnavailable, err)
	}
	return nil
}
