package payment

import (
	"fmt"

	"github.com/tallyhq/tally/pkg/money"
)

// MaxRequestAmountKey names the per-request maximum amount setting, shared with the ledger.
const MaxRequestAmountKey = money.MaxRequestAmountKey

// DefaultMaxRequestAmount is the per-request maximum when TALLY_MAX_REQUEST_AMOUNT is unset:
// 1,000,000 units of the currency.
const DefaultMaxRequestAmount = money.DefaultMaxRequestAmount

// CheckRequestAmount refuses an amount above the per-request maximum with ErrInvalid naming the
// limit and its setting (the rule of money.Limit, shared with the ledger and pricing).
func CheckRequestAmount(amount, limit money.Nanos) error {
	l, err := money.NewLimit(limit)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if err := l.Check("amount", amount); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return nil
}
