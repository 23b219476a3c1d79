package payment

import (
	"context"
	"time"
)

// Processor runs Checkout Sessions and refunds: Stripe, or the local test-mode checkout.
type Processor interface {
	Mode() Mode
	CreateSession(ctx context.Context, req SessionRequest) (CreatedSession, error)
	// Refund asks for a refund with the idempotency key "refund:<refund id>": a retried call
	// reaches the same processor refund.
	Refund(ctx context.Context, req RefundRequest) (ProcessorRefund, error)
	// RefundStatus reads a processor refund, to follow one in flight.
	RefundStatus(ctx context.Context, processorRefundID string) (ProcessorRefund, error)
	// FindRefund looks for the processor refund made for req.RefundID (by its metadata), for a
	// refund older than the processor keeps idempotency keys; found is false when there is none.
	FindRefund(ctx context.Context, req RefundRequest) (r ProcessorRefund, found bool, err error)
	// RecentSessions returns the sessions created since since, for reconciliation.
	RecentSessions(ctx context.Context, since time.Time) ([]Session, error)
	// Session returns the current state of one Checkout Session, for the expiry sweep; a session
	// the processor does not know wraps ErrRejected.
	Session(ctx context.Context, sessionID string) (Session, error)
}

// SessionRequest asks a processor for a Checkout Session.
type SessionRequest struct {
	PaymentID   string
	OrgID       string
	Member      Member
	AmountMinor int64
	Currency    string
	// ExpiresAt is when the session stops being payable (Stripe: 30 minutes to 24 hours ahead).
	ExpiresAt time.Time
}

// CreatedSession is a Checkout Session ready to be paid.
type CreatedSession struct {
	ID        string
	URL       string
	ExpiresAt time.Time
	// CustomerID is the processor customer a setup session saves the card on.
	CustomerID string
}

// RefundRequest asks a processor to refund part of a
type RefundRequest struct {
	RefundID        string
	SessionID       string
	PaymentIntentID string
	AmountMinor     int64
	Currency        string
	Reason          string
}

// ProcessorRefund is a refund at the processor.
type ProcessorRefund struct {
	ID     string
	Status ProcessorRefundStatus
}

// WalletReader is a processor that can tell which card wallet (Google Pay, Apple Pay) paid a
// payment intent; Stripe's Checkout Session does not say.
type WalletReader interface {
	PaymentWallet(ctx context.Context, paymentIntentID string) (string, error)
}
