package payment

import (
	"fmt"
	"time"

	"github.com/tallyhq/tally/pkg/money"
)

// Bounds of a Checkout Session's expiry: Stripe accepts expires_at from 30 minutes to 24 hours
// after creation; the test-mode page keeps to the same.
const (
	MinCheckoutExpiry     = 30 * time.Minute
	MaxCheckoutExpiry     = 24 * time.Hour
	DefaultCheckoutExpiry = time.Hour
)

// CheckCheckoutExpiry checks a checkout expiry against Stripe's bounds.
func CheckCheckoutExpiry(d time.Duration) error {
	if d < MinCheckoutExpiry || d > MaxCheckoutExpiry {
		return fmt.Errorf("the checkout expiry %s must be between %s and %s (Stripe's bounds)", d, MinCheckoutExpiry, MaxCheckoutExpiry)
	}
	return nil
}

// DefaultPresets returns the amounts the Add Credits dialog suggests by default, in units of the
// organization's currency: 10, 25, 50 and 100.
func DefaultPresets() []money.Nanos {
	return []money.Nanos{10 * money.NanosPerUnit, 25 * money.NanosPerUnit, 50 * money.NanosPerUnit, 100 * money.NanosPerUnit}
}

// CheckPresets checks suggested top-up amounts: one to six, strictly ascending, each within
// [minimum, maximum].
func CheckPresets(presets []money.Nanos, minimum, maximum money.Nanos) error {
	if len(presets) == 0 || len(presets) > 6 {
		return fmt.Errorf("between 1 and 6 top-up presets are needed, got %d", len(presets))
	}
	for i, p := range presets {
		if p < minimum || p > maximum {
			return fmt.Errorf("top-up preset %s is outside the top-up limits %s to %s", p.Display(), minimum.Display(), maximum.Display())
		}
		if i > 0 && p <= presets[i-1] {
			return fmt.Errorf("top-up presets must be strictly ascending (%s after %s)", p.Display(), presets[i-1].Display())
		}
	}
	return nil
}

// CheckoutOptions is what the Add Credits dialog offers an organization: the top-up limits
// CreateCheckout enforces, suggested amounts, all in the organization's currency, and the
// validity of credits.
type CheckoutOptions struct {
	Currency       string
	Min, Max       money.Money
	Presets        []money.Money
	ValidityMonths int
}
