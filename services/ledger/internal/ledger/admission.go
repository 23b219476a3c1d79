package ledger

import (
	"fmt"
	"strings"

	"github.com/tallyhq/tally/pkg/money"
)

// CheckLimit refuses a request whose amount is above the per-request maximum: the amount of a
// credit, a debit (the priced total of a usage debit), a reserve or a capture, and |amount| of an
// adjustment. With every amount bounded, no organization balance can be pushed far by one request,
// and the platform accounts, whose balances are unbounded numerics, cannot be exhausted at all.
func (r *Request) CheckLimit(l money.Limit) error {
	field := "amount"
	if r.Usage != nil {
		field = "the priced usage total"
	}
	if err := l.Check(field, r.Amount); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return nil
}

// Owners of the idempotency-key namespaces: the internal services whose derived keys live there.
// LedgerOwned namespaces are written by the ledger itself and by no caller.
const (
	OwnerInstancesMetering = "instances-metering"
	OwnerPayments          = "payments"
	LedgerOwned            = ""
)

// ReservedKeyNamespace returns the reserved namespace (prefix) key falls in and the internal
// service that owns it, or ok false for a key in no reserved namespace. Keys that tally derives
// itself live there, so a caller cannot take one first: instances-metering charges rental period
// n of instance i with "rental:<i>:<n>", payments credits a Checkout Session with
// "checkout:<session>" and takes a refund back with "refund:<refund>", and the ledger writes
// "expiry:<time>" and "tx:<id>" itself.
func ReservedKeyNamespace(key string) (prefix, owner string, ok bool) {
	for _, ns := range [...]struct{ prefix, owner string }{
		{"rental:", OwnerInstancesMetering},
		{"checkout:", OwnerPayments},
		{"refund:", OwnerPayments},
		{"expiry:", LedgerOwned},
		{"tx:", LedgerOwned},
	} {
		if strings.HasPrefix(key, ns.prefix) {
			return ns.prefix, ns.owner, true
		}
	}
	return "", "", false
}

// CheckKeyNamespace refuses an idempotency key in a namespace reserved for another identity than
// the caller's: a backend that sends "rental:i-1:3" must not make that rental period free.
func (r *Request) CheckKeyNamespace() error {
	prefix, owner, reserved := ReservedKeyNamespace(r.IdempotencyKey)
	if !reserved || (owner != LedgerOwned && owner == r.CallerService) {
		return nil
	}
	return fmt.Errorf("%w: idempotency_key: the prefix %q is reserved for tally", ErrInvalid, prefix)
}
