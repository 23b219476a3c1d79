package money

import (
	"errors"
	"fmt"
	"strings"
)

// MaxRequestAmountKey is the setting that bounds the amount of one request (decimal units of the
// request's currency, e.g. "1000000" or "2500.5").
const MaxRequestAmountKey = "TALLY_MAX_REQUEST_AMOUNT"

// DefaultMaxRequestAmount is the per-request maximum when MaxRequestAmountKey is not set:
// 1,000,000 units (1e15 nanos).
const DefaultMaxRequestAmount Nanos = 1_000_000 * NanosPerUnit

// ErrOverLimit is returned for an amount above the per-request maximum; callers map it to
// InvalidArgument.
var ErrOverLimit = errors.New("exceeds the per-request maximum")

// Limit is the per-request maximum amount, the same number of units in every currency. The zero
// Limit is DefaultMaxRequestAmount, so a forgotten setting fails closed rather than open.
type Limit struct {
	max Nanos
}

// NewLimit returns the limit max, which must be positive.
func NewLimit(max Nanos) (Limit, error) {
	if max <= 0 {
		return Limit{}, fmt.Errorf("the per-request maximum must be positive, got %s", max.Decimal())
	}
	return Limit{max: max}, nil
}

// ParseLimit parses a per-request maximum written in decimal units, e.g. "1000000" or "2500.5".
func ParseLimit(s string) (Limit, error) {
	n, err := ParseDecimal(s)
	if err != nil {
		return Limit{}, err
	}
	return NewLimit(n)
}

// Max returns the largest amount the limit admits.
func (l Limit) Max() Nanos {
	if l.max <= 0 {
		return DefaultMaxRequestAmount
	}
	return l.max
}

// Check returns ErrOverLimit, naming field and the limit, when |n| is above the maximum, e.g.
// "amount exceeds the per-request maximum of 1000000 (TALLY_MAX_REQUEST_AMOUNT)".
func (l Limit) Check(field string, n Nanos) error {
	max := l.Max()
	// Compared on both sides so that math.MinInt64, whose negation overflows, is refused too.
	if n > max || n < -max {
		return fmt.Errorf("%s %w of %s (%s)", field, ErrOverLimit, max.Decimal(), MaxRequestAmountKey)
	}
	return nil
}

// String formats the limit as ParseLimit reads it.
func (l Limit) String() string { return l.Max().Decimal() }

// Decimal formats the amount as the shortest exact decimal, e.g. "1000000", "2500.5", "-0.000002";
// ParseDecimal reads it back.
func (n Nanos) Decimal() string {
	s := n.String()
	s = strings.TrimRight(s, "0")
	return strings.TrimSuffix(s, ".")
}
