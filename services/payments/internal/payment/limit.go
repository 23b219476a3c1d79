package payment

import (
	"fmt"
	"strings"

	"github.com/tallyhq/tally/pkg/money"
)

// MaxRequestAmountKey names the per-request maximum amount setting, shared with the ledger.
const MaxRequestAmountKey = "TALLY_MAX_REQUEST_AMOUNT"

// DefaultMaxRequestAmount is the per-request maximum when TALLY_MAX_REQUEST_AMOUNT is unset:
// 1,000,000 units of the currency.
const DefaultMaxRequestAmount = 1_000_000 * money.Nanos(money.NanosPerUnit)

// CheckRequestAmount refuses an amount above the per-request maximum with ErrInvalid naming the
// limit and its setting.
func CheckRequestAmount(amount, limit money.Nanos) error {
	if amount > limit {
		return fmt.Errorf("%w: amount exceeds the per-request maximum of %s (%s)", ErrInvalid, Decimal(limit), MaxRequestAmountKey)
	}
	return nil
}

// Decimal formats n as a plain decimal without trailing zeros: 1000000, 2500.5.
func Decimal(n money.Nanos) string {
	s := strings.TrimRight(n.String(), "0")
	return strings.TrimSuffix(s, ".")
}
