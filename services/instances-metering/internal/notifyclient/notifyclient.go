// Package notifyclient reports suspended rentals to the notifications service, which emails the
// organization's opted-in members.
package notifyclient

import (
	"context"
	"errors"
	"fmt"

	notificationsv1 "github.com/tallyhq/tally/pkg/gen/tally/notifications/v1"
	"github.com/tallyhq/tally/services/instances-metering/internal/rental"
)

// Client calls the notifications service.
type Client struct {
	c notificationsv1.NotificationsServiceClient
}

var _ rental.Notifier = (*Client)(nil)

// New returns a Client over c.
func New(c notificationsv1.NotificationsServiceClient) (*Client, error) {
	if c == nil {
		return nil, errors.New("notifyclient: client is required")
	}
	return &Client{c: c}, nil
}

// RentalSuspended implements rental.Notifier.
func (c *Client) RentalSuspended(ctx context.Context, orgID, instanceID, idempotencyKey, reason string) error {
	_, err := c.c.NotifyRentalSuspended(ctx, &notificationsv1.NotifyRentalSuspendedRequest{
		OrgId: orgID, InstanceId: instanceID, IdempotencyKey: idempotencyKey, Reason: reason,
	})
	if err != nil {
		return fmt.Errorf("notifying the suspension of %s: %w", instanceID, err)
	}
	return nil
}
