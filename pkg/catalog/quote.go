package catalog

import (
	"fmt"
	"math"
	"math/big"
	"math/bits"
	"time"

	"github.com/tallyhq/tally/pkg/money"
	"github.com/tallyhq/tally/pkg/textcheck"
)

// Quote is the price of a usage of one model at one time.
//
// Rounding: Total is the exact rational sum over the lines of quantity × price / per, rounded up
// to the nano once — the platform's one rounding rule applied once per charge. Each line's Amount
// is its own exact value rounded up to the nano, for display only, so the lines may add up to at
// most len(Lines)-1 nanos more than Total; Total is what is charged.
type Quote struct {
	ModelID string
	// VersionID is the price version used; record it with the charge.
	VersionID string
	// CatalogVersion is the version of the catalog the quote was computed from.
	CatalogVersion int64
	Currency       string
	At             time.Time
	// Lines holds one line per unit of the usage, in the order of the model's dimensions.
	Lines []Line
	Total money.Nanos
}

// Line is the charge of one dimension of a quote.
type Line struct {
	Unit      string
	Quantity  Quantity
	UnitPrice money.Nanos
	Per       int64
	// Amount is Quantity × UnitPrice / Per rounded up to the nano (display only, see Quote).
	Amount money.Nanos
}

// fraction is the exact fractional part num/den (0 <= num < den) of a line amount in nanos.
type fraction struct{ num, den uint64 }

// Quote prices usage of modelID with the version in force at `at`. Every unit of usage must be
// one of the version's dimensions (ErrUnknownDimension) with a quantity between 0 and
// MaxQuantity (ErrInvalidQuantity); usage must not be empty. Unknown models give ErrUnknownModel,
// a model without a version at `at` ErrNoPriceInForce. Quote does not check that `at` is not in
// the future: callers apply CheckUsageTime with their clock.
func (c *Catalog) Quote(modelID string, usage Usage, at time.Time) (Quote, error) {
	v, err := c.Model(modelID, at)
	if err != nil {
		return Quote{}, err
	}
	if len(usage) == 0 {
		return Quote{}, fmt.Errorf("%w: usage is empty", ErrInvalidQuantity)
	}
	q := Quote{
		ModelID:        modelID,
		VersionID:      v.ID,
		CatalogVersion: c.version,
		Currency:       v.Currency,
		At:             at,
		Lines:          make([]Line, 0, len(usage)),
	}
	for _, d := range v.Dimensions {
		qty, ok := usage[d.Unit]
		if !ok {
			continue
		}
		if err := qty.check(); err != nil {
			return Quote{}, fmt.Errorf("usage %s: %w", d.Unit, err)
		}
		q.Lines = append(q.Lines, Line{Unit: d.Unit, Quantity: qty, UnitPrice: d.Price, Per: d.Per})
	}
	if len(q.Lines) != len(usage) {
		for unit := range usage {
			if !v.hasUnit(unit) {
				return Quote{}, fmt.Errorf("%w %s for model %s (billed units: %s)", ErrUnknownDimension, textcheck.Quote(unit), textcheck.Quote(modelID), v.units())
			}
		}
	}
	if err := priceLines(q.Lines, &q.Total); err != nil {
		return Quote{}, fmt.Errorf("pricing usage of %s: %w", textcheck.Quote(modelID), err)
	}
	return q, nil
}

func (v *ModelVersion) hasUnit(unit string) bool {
	for _, d := range v.Dimensions {
		if d.Unit == unit {
			return true
		}
	}
	return false
}

func (v *ModelVersion) units() string {
	s := ""
	for i, d := range v.Dimensions {
		if i > 0 {
			s += ", "
		}
		s += d.Unit
	}
	return s
}

// priceLines fills each line's Amount and *total with 64-bit integer arithmetic (128-bit
// intermediates), falling back to exact rationals when an intermediate does not fit.
func priceLines(lines []Line, total *money.Nanos) error {
	var (
		sum    uint64
		fracs  [2]fraction // the first two fractional parts
		nFrac  int         // lines with a fractional nano
		extras uint64      // nanos the fractional parts add to the exact sum's ceiling
	)
	for i := range lines {
		l := &lines[i]
		whole, f, ok := lineExact(l.Quantity, uint64(l.UnitPrice), uint64(l.Per))
		if !ok {
			return priceLinesRat(lines, total)
		}
		amount := whole
		if f.num != 0 {
			amount++
			if nFrac < len(fracs) {
				fracs[nFrac] = f
			}
			nFrac++
		}
		if amount > math.MaxInt64 {
			return overflow()
		}
		l.Amount = money.Nanos(amount)
		var carry uint64
		sum, carry = bits.Add64(sum, whole, 0)
		if carry != 0 || sum > math.MaxInt64 {
			return overflow()
		}
	}
	switch nFrac {
	case 0:
	case 1:
		extras = 1
	case 2:
		// ceil(a/b + c/d) for 0 < a/b, c/d < 1 is 2 when a×d + c×b > b×d, else 1.
		extras = 1
		if fractionSumAboveOne(fracs[0], fracs[1]) {
			extras = 2
		}
	default:
		// Rare: three or more lines with fractional nanos; the exact sum decides the ceiling.
		return priceLinesRat(lines, total)
	}
	sum += extras
	if sum > math.MaxInt64 {
		return overflow()
	}
	*total = money.Nanos(sum)
	return nil
}

// fractionSumAboveOne reports whether x + y > 1, exactly, with 128-bit products.
func fractionSumAboveOne(x, y fraction) bool {
	ahi, alo := bits.Mul64(x.num, y.den)
	bhi, blo := bits.Mul64(y.num, x.den)
	lo, c := bits.Add64(alo, blo, 0)
	hi, c2 := bits.Add64(ahi, bhi, c)
	if c2 != 0 {
		return true // the sum needs 129 bits, the product of the denominators fits in 128
	}
	phi, plo := bits.Mul64(x.den, y.den)
	return hi > phi || (hi == phi && lo > plo)
}

// lineExact returns qty × price / per as whole nanos plus an exact fraction, or ok=false when an
// intermediate exceeds 64 bits (only with per above ~1.8e10 and a fractional quantity) or the
// amount itself does.
func lineExact(qty Quantity, price, per uint64) (whole uint64, f fraction, ok bool) {
	hi, lo := bits.Mul64(uint64(qty.whole), price)
	if hi >= per {
		return 0, fraction{}, false // quotient >= 2^64
	}
	whole, rem := bits.Div64(hi, lo, per)
	if qty.nano == 0 {
		return whole, fraction{num: rem, den: per}, true
	}
	// With nano-units: whole×price/per + nano×price/(per×1e9), over the common denominator per×1e9.
	dhi, den := bits.Mul64(per, nanosPerUnit)
	if dhi != 0 {
		return 0, fraction{}, false
	}
	nhi, nlo := bits.Mul64(uint64(qty.nano), price)
	w2, r2 := bits.Div64(nhi, nlo, den)    // nano×price/den < price: never overflows
	_, r1 := bits.Mul64(rem, nanosPerUnit) // rem < per, so rem×1e9 < den fits
	r, carry := bits.Add64(r1, r2, 0)
	if carry != 0 || r >= den {
		r -= den // the true sum is below 2×den, so this is exact modulo 2^64
		w2++
	}
	whole, carry = bits.Add64(whole, w2, 0)
	if carry != 0 {
		return 0, fraction{}, false
	}
	return whole, fraction{num: r, den: den}, true
}

// priceLinesRat is the reference computation with exact rationals: each line rounded up with
// money.MulDivCeil, the total the exact sum rounded up once with the same function.
func priceLinesRat(lines []Line, total *money.Nanos) error {
	sum := new(big.Rat)
	for i := range lines {
		l := &lines[i]
		q := l.Quantity.Rat()
		amount, err := money.MulDivCeil(q, l.UnitPrice, l.Per)
		if err != nil {
			return overflow()
		}
		l.Amount = amount
		exact := q.Mul(q, big.NewRat(int64(l.UnitPrice), l.Per))
		sum.Add(sum, exact)
	}
	t, err := money.MulDivCeil(sum, 1, 1)
	if err != nil {
		return overflow()
	}
	*total = t
	return nil
}

func overflow() error {
	return fmt.Errorf("%w: %w", ErrInvalidQuantity, money.ErrOverflow)
}
