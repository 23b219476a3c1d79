package pricing

import (
	"fmt"

	"github.com/tallyhq/tally/pkg/money"
)

// CheckLimit refuses a model price above the per-request maximum (TALLY_MAX_REQUEST_AMOUNT): a
// price is what one request may be charged per `per` units, and no charge may exceed the maximum
// the ledger accepts for one request.
func (c ModelChange) CheckLimit(l money.Limit) error {
	for i, d := range c.Version.Dimensions {
		if err := l.Check(fmt.Sprintf("dimensions[%d].price", i), d.Price); err != nil {
			return fmt.Errorf("%w: %w", ErrInvalid, err)
		}
	}
	return nil
}

// CheckLimit refuses an hourly price above the per-request maximum, like ModelChange.CheckLimit.
func (c InstanceChange) CheckLimit(l money.Limit) error {
	if err := l.Check("hourly_price", c.Version.HourlyPrice); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return nil
}
