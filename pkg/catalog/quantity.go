package catalog

import (
	"fmt"
	"math/big"
	"strconv"

	"github.com/tallyhq/tally/pkg/textcheck"
)

// MaxQuantity bounds one usage quantity: anything larger is a bug or an attack, not usage.
const MaxQuantity = 1_000_000_000_000_000 // 1e15

// nanosPerUnit is the number of nano-units in one unit of quantity.
const nanosPerUnit = 1_000_000_000

// Quantity is an exact amount of usage: whole units plus nano-units (1e-9), e.g. 12.5 audio
// seconds. The zero value is zero. Quote rejects quantities that are negative or above MaxQuantity.
type Quantity struct {
	whole int64
	nano  int32
}

// Usage maps units (e.g. "input_tokens") to the quantity used.
type Usage map[string]Quantity

// QuantityOf returns the integer quantity n.
func QuantityOf(n int64) Quantity { return Quantity{whole: n} }

// ParseQuantity parses a non-negative decimal such as "1200" or "12.5": digits, optionally a dot
// and 1 to 9 fractional digits, at most MaxQuantity. Anything else (signs, exponents, spaces) is
// ErrInvalidQuantity.
func ParseQuantity(s string) (Quantity, error) {
	intPart, frac := s, ""
	for i := 0; i < len(s); i++ {
		if s[i] == '.' {
			intPart, frac = s[:i], s[i+1:]
			if frac == "" {
				return Quantity{}, fmt.Errorf("%w %s: no digits after the dot", ErrInvalidQuantity, textcheck.Quote(s))
			}
			break
		}
	}
	if intPart == "" {
		return Quantity{}, fmt.Errorf("%w %s: not a non-negative decimal", ErrInvalidQuantity, textcheck.Quote(s))
	}
	if len(frac) > 9 {
		return Quantity{}, fmt.Errorf("%w %s: more than 9 fractional digits", ErrInvalidQuantity, textcheck.Quote(s))
	}
	var whole int64
	for i := 0; i < len(intPart); i++ {
		c := intPart[i]
		if c < '0' || c > '9' {
			return Quantity{}, fmt.Errorf("%w %s: not a non-negative decimal", ErrInvalidQuantity, textcheck.Quote(s))
		}
		whole = whole*10 + int64(c-'0')
		if whole > MaxQuantity {
			return Quantity{}, fmt.Errorf("%w %s: above %d", ErrInvalidQuantity, textcheck.Quote(s), int64(MaxQuantity))
		}
	}
	var nano int32
	for i := 0; i < 9; i++ {
		nano *= 10
		if i < len(frac) {
			c := frac[i]
			if c < '0' || c > '9' {
				return Quantity{}, fmt.Errorf("%w %s: not a non-negative decimal", ErrInvalidQuantity, textcheck.Quote(s))
			}
			nano += int32(c - '0')
		}
	}
	q := Quantity{whole: whole, nano: nano}
	if err := q.check(); err != nil {
		return Quantity{}, fmt.Errorf("%w %s: above %d", ErrInvalidQuantity, textcheck.Quote(s), int64(MaxQuantity))
	}
	return q, nil
}

// ParseUsage parses a usage given as unit → decimal string, the form of the wire.
func ParseUsage(m map[string]string) (Usage, error) {
	u := make(Usage, len(m))
	for unit, s := range m {
		q, err := ParseQuantity(s)
		if err != nil {
			return nil, fmt.Errorf("usage %s: %w", textcheck.Quote(unit), err)
		}
		u[unit] = q
	}
	return u, nil
}

// check returns ErrInvalidQuantity unless 0 <= q <= MaxQuantity.
func (q Quantity) check() error {
	if q.whole < 0 || q.nano < 0 || q.nano >= nanosPerUnit || q.whole > MaxQuantity || (q.whole == MaxQuantity && q.nano > 0) {
		return fmt.Errorf("%w: %s is not between 0 and %d", ErrInvalidQuantity, q, int64(MaxQuantity))
	}
	return nil
}

// IsZero reports whether q is zero.
func (q Quantity) IsZero() bool { return q.whole == 0 && q.nano == 0 }

// String formats q as a decimal without trailing fractional zeros, e.g. "12.5" or "1200".
func (q Quantity) String() string {
	if q.nano == 0 {
		return strconv.FormatInt(q.whole, 10)
	}
	if q.whole < 0 || q.nano < 0 {
		return q.Rat().FloatString(9)
	}
	frac := fmt.Sprintf("%09d", q.nano)
	for frac[len(frac)-1] == '0' {
		frac = frac[:len(frac)-1]
	}
	return strconv.FormatInt(q.whole, 10) + "." + frac
}

// Rat returns q as an exact rational.
func (q Quantity) Rat() *big.Rat {
	r := new(big.Rat).SetInt64(q.whole)
	if q.nano != 0 {
		r.Add(r, big.NewRat(int64(q.nano), nanosPerUnit))
	}
	return r
}
