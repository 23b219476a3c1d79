// Package ledger holds the ledger's domain: accounts, balanced transactions, holds, events and the
// rules that apply one request to an organization's account. It does no I/O.
package ledger

import (
	"errors"
	"math"
	"time"

	"github.com/tallyhq/tally/pkg/money"
)

// Domain errors; grpcapi maps each to one status code.
var (
	ErrInsufficientFunds   = errors.New("insufficient available credits")
	ErrCurrencyMismatch    = errors.New("currency does not match the organization's account")
	ErrIdempotencyConflict = errors.New("idempotency key already used with other parameters")
	ErrHoldNotFound        = errors.New("hold not found")
	ErrHoldNotActive       = errors.New("hold is no longer active")
	ErrOverflow            = errors.New("the amount would take the balance beyond the int64 range of nanos")
	ErrInvalid             = errors.New("invalid request")
	// ErrUnavailable marks a failure to reach or use a dependency (PostgreSQL) rather than a
	// refusal of the request: the same request may succeed when retried.
	ErrUnavailable = errors.New("the ledger's database is unavailable")
)

// Operation is what a request asks the ledger to do.
type Operation string

// Operations. The internal ones are issued by the ledger's own sweeps.
const (
	OpCredit        Operation = "credit"
	OpDebit         Operation = "debit"
	OpAdjust        Operation = "adjust"
	OpReserve       Operation = "reserve"
	OpCapture       Operation = "capture"
	OpRelease       Operation = "release"
	OpExpireHold    Operation = "expire_hold"    // internal: a hold past its TTL
	OpExpireCredits Operation = "expire_credits" // internal: credits past their validity
)

// TxKind is the kind of a ledger transaction.
type TxKind string

// Transaction kinds.
const (
	TxCredit     TxKind = "credit"
	TxDebit      TxKind = "debit"
	TxAdjustment TxKind = "adjustment"
	TxExpiry     TxKind = "expiry"
	TxCapture    TxKind = "capture"
)

// EventKind is the kind of a balance event.
type EventKind string

// Event kinds.
const (
	EventCredit       EventKind = "credit"
	EventDebit        EventKind = "debit"
	EventAdjustment   EventKind = "adjustment"
	EventExpiry       EventKind = "expiry"
	EventCapture      EventKind = "capture"
	EventHoldPlaced   EventKind = "hold_placed"
	EventHoldReleased EventKind = "hold_released"
	EventHoldExpired  EventKind = "hold_expired"
)

// CreditSource says which platform account pays for a credit.
type CreditSource string

// Credit sources.
const (
	SourcePayment CreditSource = "payment_clearing"
	SourceGrant   CreditSource = "grants"
)

// Platform account kinds; each is sharded per currency so no single row is locked by every write.
const (
	PlatformRevenue     = "revenue"
	PlatformExpired     = "expired"
	PlatformAdjustments = "adjustments"
)

// HoldStatus is the life cycle of a hold.
type HoldStatus string

// Hold statuses.
const (
	HoldActive   HoldStatus = "active"
	HoldCaptured HoldStatus = "captured"
	HoldReleased HoldStatus = "released"
	HoldExpired  HoldStatus = "expired"
	// HoldMoved is a hold left behind on the shard its organization moved away from.
	HoldMoved HoldStatus = "moved"
)

// Request is one write asked of the ledger. Amount is in nanos; Currency "" means the
// organization's currency.
type Request struct {
	Op             Operation
	OrgID          string
	Amount         money.Nanos
	Currency       string
	IdempotencyKey string
	Description    string
	Reason         string
	Reference      string
	Metadata       map[string]string
	RequireFunds   bool
	Source         CreditSource
	HoldID         string
	TTL            time.Duration
	Actor          string
	// CallerService is the internal service the caller's token identifies (subject
	// "service:<name>" with the service role), "" for every other caller. Only that service may
	// use the idempotency-key namespaces tally reserves for it (see CheckKeyNamespace).
	CallerService string
	// Usage, on a debit, is what the caller sent instead of an amount; Pricing is the price the
	// ledger computed for it (Amount and Currency then hold its total).
	Usage   *Usage
	Pricing *PricedUsage
}

// Usage is what a call used, as the caller sent it.
type Usage struct {
	ModelID    string
	Quantities map[string]string
	// OccurredAt is zero when the caller did not say (then: now).
	OccurredAt time.Time
}

// PricedUsage explains a usage-priced charge.
type PricedUsage struct {
	ModelID        string      `json:"model_id"`
	PriceVersionID string      `json:"price_version_id"`
	CatalogVersion int64       `json:"catalog_version"`
	OccurredAt     time.Time   `json:"occurred_at"`
	Lines          []UsageLine `json:"lines"`
}

// UsageLine is one unit of a priced usage.
type UsageLine struct {
	Unit      string      `json:"unit"`
	Quantity  string      `json:"quantity"`
	UnitPrice money.Nanos `json:"unit_price"`
	Per       int64       `json:"per"`
	Amount    money.Nanos `json:"amount"`
}

// Account is an organization's credit account as locked inside a write.
type Account struct {
	ID        int64
	OrgID     string
	Currency  string
	Balance   money.Nanos
	Held      money.Nanos
	ExpiresAt time.Time // zero when nothing can expire
	Version   int64
	// MovedTo names the shard the organization moved to (its row here is a fence, see
	// residency.go); Frozen is set while it moves in. Either refuses every write here.
	MovedTo string
	Frozen  bool
	// Limit is the monthly spend limit its admins set and Spend its charges this month
	// (spend.go), written in the same commit as the balance.
	Limit SpendLimit
	Spend Spend
	// Projects are the per-project monthly limits (project_limits.go), read under the account's
	// lock and written by the batch that counts a charge of one of them; nil when none is set.
	Projects map[string]*ProjectLimit
	// ProjectLimitCount is how many projects have a limit (kept on the account row with them):
	// Projects holds them all when ProjectsComplete. A state known to lack them (a cache entry
	// that does not carry them) has -1.
	ProjectLimitCount int
}

// Available is the balance that can still be spent: balance minus active holds, where a positive
// balance past its validity counts as zero. The batch never accepts a change after which this
// leaves the int64 range; a state that would (written before that rule) reads as the lowest value.
func (a Account) Available(now time.Time) money.Nanos {
	bal := a.Balance
	if a.Expired(now) && bal > 0 {
		bal = 0
	}
	avail, err := money.Sub(bal, a.Held)
	if err != nil {
		return math.MinInt64
	}
	return avail
}

// Expired reports whether the account's credits are past their validity at now.
func (a Account) Expired(now time.Time) bool {
	return !a.ExpiresAt.IsZero() && !a.ExpiresAt.After(now)
}

// Posting is one side of a transaction. Platform postings name their account; org postings carry
// the account id.
type Posting struct {
	AccountID int64
	Account   string
	Amount    money.Nanos
}

// Transaction is one balanced change of an organization's balance.
type Transaction struct {
	ID             string
	Seq            int64
	OrgID          string
	Kind           TxKind
	Amount         money.Nanos // signed change of the org balance
	BalanceAfter   money.Nanos
	Currency       string
	Description    string
	Metadata       map[string]string
	Reason         string
	Reference      string
	IdempotencyKey string
	Actor          string
	HoldID         string
	CreatedAt      time.Time
	Postings       []Posting
	Pricing        *PricedUsage
}

// Hold sets money aside from the available balance.
type Hold struct {
	ID            string
	OrgID         string
	Amount        money.Nanos
	Currency      string
	Status        HoldStatus
	Description   string
	ExpiresAt     time.Time
	CreatedAt     time.Time
	EndedAt       time.Time
	Captured      money.Nanos
	TransactionID string
}

// Event is one committed change of an organization's balance or available amount.
type Event struct {
	Seq           int64
	OrgID         string
	Kind          EventKind
	TransactionID string
	HoldID        string
	Amount        money.Nanos
	Balance       money.Nanos
	Available     money.Nanos
	Currency      string
	ExpiresAt     time.Time
	OccurredAt    time.Time
	// CreditSource is set on credit events.
	CreditSource CreditSource
	// SpendLimit is set on spend alerts: the monthly limit whose alert fired.
	SpendLimit money.Nanos
}

// Result is what a write returns: the transaction and/or hold it made and the account after it.
type Result struct {
	Transaction *Transaction
	Hold        *Hold
	Account     Account
	// Replayed is true when the idempotency key was seen before and the original result is returned.
	Replayed bool
}

// IdempotencyRecord remembers what a key did.
type IdempotencyRecord struct {
	OrgID         string
	Key           string
	Operation     Operation
	RequestHash   []byte
	TransactionID string
	HoldID        string
}
