// Package ledgerclient is the payments service's view of the ledger: the organization's currency,
// the top-up credit and taking refunded credits back, over tally.ledger.v1 with the service's own
// token (sub service:payments).
package ledgerclient

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	ledgerv1 "github.com/tallyhq/tally/pkg/gen/tally/ledger/v1"
	"github.com/tallyhq/tally/pkg/money"
	"github.com/tallyhq/tally/services/payments/internal/app"
	"github.com/tallyhq/tally/services/payments/internal/payment"
)

// Client calls the ledger.
type Client struct {
	c ledgerv1.LedgerServiceClient
}

var _ app.Ledger = (*Client)(nil)

// New returns a Client over c.
func New(c ledgerv1.LedgerServiceClient) (*Client, error) {
	if c == nil {
		return nil, errors.New("ledgerclient: client is required")
	}
	return &Client{c: c}, nil
}

// Currency implements app.Ledger.
func (c *Client) Currency(ctx context.Context, orgID string) (string, error) {
	b, err := c.c.GetBalance(ctx, &ledgerv1.GetBalanceRequest{OrgId: orgID})
	if err != nil {
		return "", classify("reading the organization's currency", err)
	}
	return b.GetBalance().GetCurrencyCode(), nil
}

// Available implements app.Ledger.
func (c *Client) Available(ctx context.Context, orgID string) (money.Money, error) {
	b, err := c.c.GetBalance(ctx, &ledgerv1.GetBalanceRequest{OrgId: orgID})
	if err != nil {
		return money.Money{}, classify("reading the balance", err)
	}
	m, err := money.FromProto(b.GetAvailable())
	if err != nil {
		return money.Money{}, fmt.Errorf("decoding available amount: %w", err)
	}
	return m, nil
}

// Credit implements app.Ledger.
func (c *Client) Credit(ctx context.Context, req app.CreditRequest) (app.Credited, error) {
	r, err := c.c.Credit(ctx, &ledgerv1.CreditRequest{
		OrgId: req.OrgID, Amount: req.Amount.Proto(), IdempotencyKey: req.IdempotencyKey, Reason: req.Reason,
		Reference: req.Reference, Source: ledgerv1.CreditSource_CREDIT_SOURCE_PAYMENT,
	})
	if err != nil {
		return app.Credited{}, classify("crediting", err)
	}
	out := app.Credited{TransactionID: r.GetTransaction().GetId()}
	if r.GetExpiresAt() != nil {
		out.ExpiresAt = r.GetExpiresAt().AsTime()
	}
	return out, nil
}

// TakeBack implements app.Ledger with a negative, audited adjustment.
func (c *Client) TakeBack(ctx context.Context, orgID string, amount money.Money, key, reason string) (string, error) {
	r, err := c.c.Adjust(ctx, &ledgerv1.AdjustRequest{
		OrgId: orgID, Amount: money.ToProto(-amount.Nanos, amount.Currency), Reason: reason, IdempotencyKey: key,
	})
	if err != nil {
		return "", classify("taking refunded credits back", err)
	}
	return r.GetTransaction().GetId(), nil
}

// classify wraps ledger errors: refusals (payment.ErrRejected) will not succeed on retry;
// anything else (payment.ErrUnavailable) may.
func classify(what string, err error) error {
	switch status.Code(err) {
	case codes.InvalidArgument, codes.FailedPrecondition, codes.AlreadyExists, codes.PermissionDenied,
		codes.Unauthenticated, codes.NotFound, codes.OutOfRange:
		return fmt.Errorf("ledger %s: %w: %s", what, payment.ErrRejected, status.Convert(err).Message())
	}
	return fmt.Errorf("ledger %s: %w: %w", what, payment.ErrUnavailable, err)
}
