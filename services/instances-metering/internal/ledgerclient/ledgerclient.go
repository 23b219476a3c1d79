// Package ledgerclient is the metering service's view of the ledger: period debits and the
// available balance, over tally.ledger.v1 with the service's own token (sub
// service:instances-metering).
package ledgerclient

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	ledgerv1 "github.com/tallyhq/tally/pkg/gen/tally/ledger/v1"
	"github.com/tallyhq/tally/pkg/money"
	"github.com/tallyhq/tally/services/instances-metering/internal/metering"
	"github.com/tallyhq/tally/services/instances-metering/internal/rental"
)

// Client calls the ledger.
type Client struct {
	c ledgerv1.LedgerServiceClient
}

var _ metering.Ledger = (*Client)(nil)

// New returns a Client over c.
func New(c ledgerv1.LedgerServiceClient) (*Client, error) {
	if c == nil {
		return nil, errors.New("ledgerclient: client is required")
	}
	return &Client{c: c}, nil
}

// Debit implements metering.Ledger.
func (c *Client) Debit(ctx context.Context, d metering.Debit) (string, error) {
	resp, err := c.c.Debit(ctx, &ledgerv1.DebitRequest{
		OrgId: d.OrgID, Amount: d.Amount.Proto(), IdempotencyKey: d.IdempotencyKey,
		Description: d.Description, Metadata: d.Metadata, RequireFunds: d.RequireFunds,
	})
	if err != nil {
		return "", classify("debiting", err)
	}
	return resp.GetTransactionId(), nil
}

// Available implements metering.Ledger.
func (c *Client) Available(ctx context.Context, orgID string) (money.Nanos, error) {
	b, err := c.c.GetBalance(ctx, &ledgerv1.GetBalanceRequest{OrgId: orgID})
	if err != nil {
		return 0, classify("reading the balance", err)
	}
	m, err := money.FromProto(b.GetAvailable())
	if err != nil {
		return 0, fmt.Errorf("decoding the available amount: %w", err)
	}
	return m.Nanos, nil
}

// classify turns a ledger status into the errors metering.Ledger promises.
func classify(what string, err error) error {
	st, _ := status.FromError(err)
	switch st.Code() {
	case codes.FailedPrecondition:
		return fmt.Errorf("%s: %w: %s", what, rental.ErrInsufficientCredits, st.Message())
	case codes.AlreadyExists:
		return fmt.Errorf("%s: %w: %s", what, metering.ErrKeyUsed, st.Message())
	case codes.InvalidArgument:
		return fmt.Errorf("%s: %w: %s", what, rental.ErrChargeRefused, st.Message())
	case codes.Canceled:
		return fmt.Errorf("%s: %w", what, context.Canceled)
	case codes.Unavailable, codes.DeadlineExceeded, codes.ResourceExhausted, codes.Aborted:
		return fmt.Errorf("%s: %w: %s", what, metering.ErrLedgerUnavailable, st.Message())
	}
	return fmt.Errorf("%s: ledger answered %s: %s", what, st.Code(), st.Message())
}
