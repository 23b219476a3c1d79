// Package money holds exact amounts of money: integer nanos (1e-9 of a currency unit) with a currency.
//
// No floating point is used anywhere. The single rounding rule of the platform lives in MulDivCeil:
// a price applied to a quantity is rounded up to the next nano, once per charge.
package money

import (
	"errors"
	"fmt"
	"math"
	"math/big"
	"strings"

	moneypb "google.golang.org/genproto/googleapis/type/money"

	"github.com/tallyhq/tally/pkg/textcheck"
)

// NanosPerUnit is the number of nanos in one currency unit.
const NanosPerUnit = 1_000_000_000

// Nanos is an exact amount in nanos of a currency unit.
type Nanos int64

// Errors returned by the conversions; callers map them to InvalidArgument.
var (
	ErrMissing          = errors.New("amount is required")
	ErrUnknownCurrency  = errors.New("unknown currency")
	ErrNanosOutOfRange  = errors.New("nanos must be between -999,999,999 and 999,999,999")
	ErrSignMismatch     = errors.New("units and nanos must have the same sign")
	ErrOverflow         = errors.New("amount exceeds the int64 range of nanos")
	ErrInvalidDecimal   = errors.New("invalid decimal amount")
	ErrCurrencyMismatch = errors.New("currency mismatch")
)

// Money is an amount with its ISO 4217 currency code.
type Money struct {
	Nanos    Nanos
	Currency string
}

// FromProto converts a google.type.Money into exact nanos. An empty currency code is returned as ""
// so that the caller can apply its own default (for example the organization's currency).
func FromProto(m *moneypb.Money) (Money, error) {
	if m == nil {
		return Money{}, ErrMissing
	}
	// Exactly as ISO 4217 spells it: "usd" is refused, not guessed.
	cur := m.GetCurrencyCode()
	if cur != "" && !IsKnownCurrency(cur) {
		return Money{}, fmt.Errorf("%w %s (an upper-case ISO 4217 code such as USD)", ErrUnknownCurrency, textcheck.Quote(cur))
	}
	units, nanos := m.GetUnits(), int64(m.GetNanos())
	if nanos <= -NanosPerUnit || nanos >= NanosPerUnit {
		return Money{}, ErrNanosOutOfRange
	}
	if (units > 0 && nanos < 0) || (units < 0 && nanos > 0) {
		return Money{}, ErrSignMismatch
	}
	const maxUnits = math.MaxInt64 / NanosPerUnit
	if units > maxUnits || units < -maxUnits {
		return Money{}, ErrOverflow
	}
	total := units*NanosPerUnit + nanos
	// units == ±maxUnits leaves room for at most 854,775,807 extra nanos.
	if (units > 0 && total < 0) || (units < 0 && total > 0) {
		return Money{}, ErrOverflow
	}
	return Money{Nanos: Nanos(total), Currency: cur}, nil
}

// ToProto converts nanos into a google.type.Money with the sign rules of that type.
func ToProto(n Nanos, currency string) *moneypb.Money {
	return &moneypb.Money{
		CurrencyCode: currency,
		Units:        int64(n) / NanosPerUnit,
		Nanos:        int32(int64(n) % NanosPerUnit),
	}
}

// Proto converts m into a google.type.Money.
func (m Money) Proto() *moneypb.Money { return ToProto(m.Nanos, m.Currency) }

// String formats the amount as a decimal with nine fractional digits, e.g. "-1.250000000".
func (n Nanos) String() string {
	sign := ""
	v := uint64(n)
	if n < 0 {
		sign = "-"
		v = uint64(-(n + 1)) + 1 // safe for math.MinInt64
	}
	return fmt.Sprintf("%s%d.%09d", sign, v/NanosPerUnit, v%NanosPerUnit)
}

// Display formats the amount for people: at least two fractional digits, trailing zeros trimmed,
// e.g. "12.50", "0.0000025".
func (n Nanos) Display() string {
	s := n.String()
	dot := strings.IndexByte(s, '.')
	frac := strings.TrimRight(s[dot+1:], "0")
	for len(frac) < 2 {
		frac += "0"
	}
	return s[:dot] + "." + frac
}

// String formats m as "12.50 USD".
func (m Money) String() string { return m.Nanos.Display() + " " + m.Currency }

// ParseDecimal parses a decimal string such as "12.5", "-0.000002" or "3" into exact nanos.
// More than nine fractional digits is an error: amounts are never rounded silently.
func ParseDecimal(s string) (Nanos, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, ErrInvalidDecimal
	}
	r, ok := new(big.Rat).SetString(s)
	if !ok || strings.ContainsAny(s, "eE/") {
		return 0, fmt.Errorf("%w %s", ErrInvalidDecimal, textcheck.Quote(s))
	}
	r.Mul(r, big.NewRat(NanosPerUnit, 1))
	if !r.IsInt() {
		return 0, fmt.Errorf("%w %s: more than 9 fractional digits", ErrInvalidDecimal, textcheck.Quote(s))
	}
	if !r.Num().IsInt64() {
		return 0, fmt.Errorf("%w %s", ErrOverflow, textcheck.Quote(s))
	}
	return Nanos(r.Num().Int64()), nil
}

// Add returns a+b or ErrOverflow.
func Add(a, b Nanos) (Nanos, error) {
	s := a + b
	if (b > 0 && s < a) || (b < 0 && s > a) {
		return 0, ErrOverflow
	}
	return s, nil
}

// Sub returns a-b or ErrOverflow.
func Sub(a, b Nanos) (Nanos, error) {
	d := a - b
	if (b > 0 && d > a) || (b < 0 && d < a) {
		return 0, ErrOverflow
	}
	return d, nil
}

// Neg returns -a or ErrOverflow (for math.MinInt64, which has no positive counterpart).
func Neg(a Nanos) (Nanos, error) {
	if a == math.MinInt64 {
		return 0, ErrOverflow
	}
	return -a, nil
}

// MulDivCeil returns ceil(quantity × price / per) exactly, the platform's one rounding rule:
// a charge computed from a price quoted per `per` units is rounded up to the next nano.
// quantity and per must be positive or zero; per must not be zero.
func MulDivCeil(quantity *big.Rat, price Nanos, per int64) (Nanos, error) {
	if per <= 0 {
		return 0, fmt.Errorf("per must be positive, got %d", per)
	}
	v := new(big.Rat).Mul(quantity, new(big.Rat).SetInt64(int64(price)))
	v.Quo(v, new(big.Rat).SetInt64(per))
	q, m := new(big.Int).DivMod(v.Num(), v.Denom(), new(big.Int))
	if m.Sign() != 0 {
		q.Add(q, big.NewInt(1)) // DivMod is Euclidean: the remainder is never negative, so +1 is the ceiling.
	}
	if !q.IsInt64() {
		return 0, ErrOverflow
	}
	return Nanos(q.Int64()), nil
}
