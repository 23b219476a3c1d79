// Package ledgerclient is the payments service's view of the ledger: the organization's currency,
// the top-up credit and taking refunded credits back, over tally.ledger.v1 with the service's own
// token (sub service:payments).
package ledgerclient

import (
	"context"
	"errors"
	"fmt"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	ledgerv1 "github.com/tallyhq/tally/pkg/gen/tally/ledger/v1"
	"github.com/tallyhq/tally/pkg/money"
	"github.com/tallyhq/tally/services/payments/internal/app"
	"github.com/tallyhq/tally/services/payments/internal/payment"
)

// DefaultTimeout is the deadline of each ledger call when New is given none.
const DefaultTimeout = 10 * time.Second

// Client calls the ledger.
type Client struct {
	c       ledgerv1.LedgerServiceClient
	timeout time.Duration
}

var _ app.Ledger = (*Client)(nil)

// New returns a Client over c whose every call has its own deadline of timeout (DefaultTimeout
// when zero), within the caller's.
func New(c ledgerv1.LedgerServiceClient, timeout time.Duration) (*Client, error) {
	if c == nil {
		return nil, errors.New("ledgerclient: client is required")
	}
	if timeout < 0 {
		return nil, errors.New("ledgerclient: timeout must not be negative")
	}
	if timeout == 0 {
		timeout = DefaultTimeout
	}
	return &Client{c: c, timeout: timeout}, nil
}

// Currency implements app.Ledger.
func (c *Client) Currency(ctx context.Context, orgID string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	b, err := c.c.GetBalance(ctx, &ledgerv1.GetBalanceRequest{OrgId: orgID})
	if err != nil {
		return "", classify("reading the organization's currency", err)
	}
	return b.GetBalance().GetCurrencyCode(), nil
}

// Available implements app.Ledger.
func (c *Client) Available(ctx context.Context, orgID string) (money.Money, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
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
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
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
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	r, err := c.c.Adjust(ctx, &ledgerv1.AdjustRequest{
		OrgId: orgID, Amount: money.ToProto(-amount.Nanos, amount.Currency), Reason: reason, IdempotencyKey: key,
	})
	if err != nil {
		return "", classify("taking refunded credits back", err)
	}
	return r.GetTransaction().GetId(), nil
}

// classify is the one place where ledger errors are judged. Only the ledger's definitive
// business refusals — the request itself is wrong (InvalidArgument, OutOfRange), the state does
// not allow it (FailedPrecondition), the idempotency key is bound to another request
// (AlreadyExists), what it names does not exist (NotFound) — wrap payment.ErrRejected: retrying
// cannot help, the caller records the refusal. Everything else wraps payment.ErrUnavailable and is
// retried: the ledger down or overloaded (Unavailable, ResourceExhausted, Aborted), a deadline,
// a failure inside the ledger (Internal, Unknown), and above all a refusal of our own credentials
// (Unauthenticated, PermissionDenied: payments' service token expired or rotated) — that is
// payments' problem to fix, never a reason to drop a paid top-up.
func classify(what string, err error) error {
	if Permanent(err) {
		return fmt.Errorf("ledger %s: %w: %s", what, payment.ErrRejected, status.Convert(err).Message())
	}
	return fmt.Errorf("ledger %s: %w: %w", what, payment.ErrUnavailable, err)
}

// Permanent reports whether a ledger error is a definitive business refusal (see classify).
func Permanent(err error) bool {
	if err == nil {
		return false
	}
	if _, ok := status.FromError(err); !ok {
		return false // not an answer of the ledger: a local or network failure
	}
	switch status.Code(err) {
	case codes.InvalidArgument, codes.OutOfRange, codes.FailedPrecondition, codes.AlreadyExists, codes.NotFound:
		return true
	}
	return false
}
