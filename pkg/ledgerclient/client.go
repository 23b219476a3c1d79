package ledgerclient

import (
	"context"
	"errors"
	"fmt"
	"time"

	moneypb "google.golang.org/genproto/googleapis/type/money"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	ledgerv1 "github.com/tallyhq/tally/pkg/gen/tally/ledger/v1"
	"github.com/tallyhq/tally/pkg/money"
)

// DefaultTimeout is the deadline of each call when Config.Timeout is zero.
const DefaultTimeout = 10 * time.Second

// Config configures a Client.
type Config struct {
	// Conn reaches the ledger, with the caller's credentials (rpcclient.DialSource).
	Conn grpc.ClientConnInterface
	// Timeout is the deadline of each unary call, within the caller's (DefaultTimeout when
	// zero). Watch streams have none.
	Timeout time.Duration
}

// Client calls the ledger. It is safe for concurrent use.
type Client struct {
	c       ledgerv1.LedgerServiceClient
	timeout time.Duration
}

// New returns a Client.
func New(cfg Config) (*Client, error) {
	if cfg.Conn == nil {
		return nil, errors.New("ledgerclient: Conn is required")
	}
	if cfg.Timeout < 0 {
		return nil, errors.New("ledgerclient: Timeout must not be negative")
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	return &Client{c: ledgerv1.NewLedgerServiceClient(cfg.Conn), timeout: cfg.Timeout}, nil
}

// Balance is an organization's account.
type Balance struct {
	OrgID     string
	Currency  string // "" while the account has never been credited
	Balance   money.Nanos
	Available money.Nanos
	Held      money.Nanos
	ExpiresAt time.Time // zero: nothing expires
	Version   int64
}

// CreditSource says where credits come from.
type CreditSource int

// The credit sources.
const (
	CreditSourceUnspecified CreditSource = iota
	CreditSourcePayment                  // a paid top-up
	CreditSourceGrant                    // free credits from operations
)

// Credit adds credits to an organization.
type Credit struct {
	OrgID          string
	Amount         money.Money
	IdempotencyKey string
	Reason         string
	Reference      string
	Source         CreditSource
}

// Credited is the result of a Credit.
type Credited struct {
	TransactionID string
	ExpiresAt     time.Time // zero: the credits do not expire
}

// Debit takes credits from an organization.
type Debit struct {
	OrgID          string
	Amount         money.Money
	IdempotencyKey string
	Description    string
	Metadata       map[string]string
	RequireFunds   bool // refuse (ErrFailedPrecondition) rather than go below zero
}

// Adjust corrects an organization's balance by a signed amount, audited.
type Adjust struct {
	OrgID          string
	Amount         money.Money // signed
	IdempotencyKey string
	Reason         string
}

// Balance reads an organization's account.
func (c *Client) Balance(ctx context.Context, orgID string) (Balance, error) {
	const op = "reading the balance"
	callCtx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	r, err := c.c.GetBalance(callCtx, &ledgerv1.GetBalanceRequest{OrgId: orgID})
	if err != nil {
		return Balance{}, classifyCall(ctx, callCtx, op, err)
	}
	b := Balance{OrgID: orgID, Version: r.GetVersion(), ExpiresAt: timeOf(r.GetExpiresAt())}
	bal, err := decode("balance", r.GetBalance(), true, "")
	if err != nil {
		return Balance{}, badReply(op, err)
	}
	b.Currency, b.Balance = bal.Currency, bal.Nanos
	if b.Available, err = decodeNanos("available", r.GetAvailable(), true, b.Currency); err != nil {
		return Balance{}, badReply(op, err)
	}
	if b.Held, err = decodeNanos("held", r.GetHeld(), false, b.Currency); err != nil {
		return Balance{}, badReply(op, err)
	}
	return b, nil
}

// Credit adds credits.
func (c *Client) Credit(ctx context.Context, r Credit) (Credited, error) {
	const op = "crediting"
	callCtx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	resp, err := c.c.Credit(callCtx, &ledgerv1.CreditRequest{
		OrgId: r.OrgID, Amount: r.Amount.Proto(), IdempotencyKey: r.IdempotencyKey, Reason: r.Reason,
		Reference: r.Reference, Source: ledgerv1.CreditSource(r.Source),
	})
	if err != nil {
		return Credited{}, classifyCall(ctx, callCtx, op, err)
	}
	if resp.GetTransaction().GetId() == "" {
		return Credited{}, badReply(op, errors.New("no transaction id"))
	}
	if _, err := decode("balance", resp.GetBalance(), false, ""); err != nil {
		return Credited{}, badReply(op, err)
	}
	return Credited{TransactionID: resp.GetTransaction().GetId(), ExpiresAt: timeOf(resp.GetExpiresAt())}, nil
}

// Debit takes credits and returns the transaction id.
func (c *Client) Debit(ctx context.Context, r Debit) (string, error) {
	const op = "debiting"
	callCtx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	resp, err := c.c.Debit(callCtx, &ledgerv1.DebitRequest{
		OrgId: r.OrgID, Amount: r.Amount.Proto(), IdempotencyKey: r.IdempotencyKey,
		Description: r.Description, Metadata: r.Metadata, RequireFunds: r.RequireFunds,
	})
	if err != nil {
		return "", classifyCall(ctx, callCtx, op, err)
	}
	if resp.GetTransactionId() == "" {
		return "", badReply(op, errors.New("no transaction id"))
	}
	if _, err := decode("balance", resp.GetBalance(), false, ""); err != nil {
		return "", badReply(op, err)
	}
	return resp.GetTransactionId(), nil
}

// Adjust corrects a balance and returns the transaction id.
func (c *Client) Adjust(ctx context.Context, r Adjust) (string, error) {
	const op = "adjusting"
	callCtx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	resp, err := c.c.Adjust(callCtx, &ledgerv1.AdjustRequest{
		OrgId: r.OrgID, Amount: r.Amount.Proto(), Reason: r.Reason, IdempotencyKey: r.IdempotencyKey,
	})
	if err != nil {
		return "", classifyCall(ctx, callCtx, op, err)
	}
	if resp.GetTransaction().GetId() == "" {
		return "", badReply(op, errors.New("no transaction id"))
	}
	if _, err := decode("balance", resp.GetBalance(), false, ""); err != nil {
		return "", badReply(op, err)
	}
	return resp.GetTransaction().GetId(), nil
}

// classifyCall is classify for a unary call made on callCtx (the caller's ctx bounded by the
// client's timeout). When the caller's deadline is the one that bound the call, a
// DeadlineExceeded is the caller's even if its timer has not fired yet: the ledger, which was
// sent that deadline (rounded down on the wire), can answer a moment before the caller's own
// timer goes off.
func classifyCall(ctx, callCtx context.Context, op string, err error) error {
	if status.Code(err) == codes.DeadlineExceeded && callerDeadlineBinds(ctx, callCtx) {
		return fmt.Errorf("ledger %s: %w", op, context.DeadlineExceeded)
	}
	return classify(ctx, op, err)
}

func callerDeadlineBinds(ctx, callCtx context.Context) bool {
	caller, ok := ctx.Deadline()
	if !ok {
		return false
	}
	call, _ := callCtx.Deadline()
	return call.Equal(caller)
}

// classify is Classify, with the caller's context: when it is done, its error is the answer.
func classify(ctx context.Context, op string, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil {
		return fmt.Errorf("ledger %s: %w", op, ctxErr)
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		// Our own per-call deadline (the caller's context is alive): an outage.
		return &Error{Op: op, Msg: err.Error(), Kind: ErrUnavailable}
	}
	return Classify(op, err)
}

// decode converts an amount of a reply. A nil amount is an error when required and zero
// otherwise; currency, when set, is the currency the amount must have.
func decode(field string, m *moneypb.Money, required bool, currency string) (money.Money, error) {
	if m == nil {
		if required {
			return money.Money{}, fmt.Errorf("%s: missing", field)
		}
		return money.Money{Currency: currency}, nil
	}
	v, err := money.FromProto(m)
	if err != nil {
		return money.Money{}, fmt.Errorf("%s: %s", field, err.Error()) // text only: never a money error to match
	}
	if currency != "" && v.Currency != "" && v.Currency != currency {
		return money.Money{}, fmt.Errorf("%s: currency %s, the account's is %s", field, v.Currency, currency)
	}
	return v, nil
}

func decodeNanos(field string, m *moneypb.Money, required bool, currency string) (money.Nanos, error) {
	v, err := decode(field, m, required, currency)
	return v.Nanos, err
}

func timeOf(ts *timestamppb.Timestamp) time.Time {
	if ts == nil {
		return time.Time{}
	}
	return ts.AsTime()
}
