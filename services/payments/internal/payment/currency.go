package payment

import (
	"fmt"
	"strings"

	"github.com/tallyhq/tally/pkg/money"
)

// zeroDecimal lists the currencies Stripe charges in whole units.
const zeroDecimal = "BIF CLP DJF GNF JPY KMF KRW MGA PYG RWF UGX VND VUV XAF XOF XPF "

// threeDecimal lists the currencies Stripe charges in thousandths; Stripe requires the last digit
// to be zero.
const threeDecimal = "BHD JOD KWD OMR TND "

// MinorExponent returns the number of fractional digits Stripe uses for currency.
func MinorExponent(currency string) int {
	cur := strings.ToUpper(currency) + " "
	switch {
	case strings.Contains(zeroDecimal, cur):
		return 0
	case strings.Contains(threeDecimal, cur):
		return 3
	}
	return 2
}

// minorStep is the smallest chargeable step in minor units (Stripe: multiples of 10 for
// three-decimal currencies, of 100 for ISK).
func minorStep(currency string) int64 {
	switch cur := strings.ToUpper(currency); {
	case strings.Contains(threeDecimal, cur+" "):
		return 10
	case cur == "ISK":
		return 100
	}
	return 1
}

// ToMinor converts an exact amount into Stripe's minor units, refusing amounts that minor units
// cannot represent exactly: a top-up is never rounded.
func ToMinor(m money.Money) (int64, error) {
	div := int64(1)
	for range 9 - MinorExponent(m.Currency) {
		div *= 10
	}
	n := int64(m.Nanos)
	if n%div != 0 {
		return 0, fmt.Errorf("%w: %s is not a whole number of %s minor units", ErrInvalid, m, m.Currency)
	}
	minor := n / div
	if step := minorStep(m.Currency); minor%step != 0 {
		return 0, fmt.Errorf("%w: %s amounts must be multiples of %s", ErrInvalid, m.Currency, FromMinor(step, m.Currency))
	}
	return minor, nil
}

// FromMinor converts Stripe minor units into an exact amount.
func FromMinor(minor int64, currency string) money.Money {
	mul := int64(1)
	for range 9 - MinorExponent(currency) {
		mul *= 10
	}
	return money.Money{Nanos: money.Nanos(minor * mul), Currency: strings.ToUpper(currency)}
}

// FormatMinor formats an amount for people with the currency's number of fractional digits,
// e.g. "12.50 USD", "1200 JPY".
func FormatMinor(m money.Money) string {
	exp := MinorExponent(m.Currency)
	s := m.Nanos.String() // nine fractional digits
	dot := strings.IndexByte(s, '.')
	if exp == 0 {
		return s[:dot] + " " + m.Currency
	}
	frac := s[dot+1:]
	if strings.TrimRight(frac[exp:], "0") != "" {
		return m.Nanos.Display() + " " + m.Currency
	}
	return s[:dot] + "." + frac[:exp] + " " + m.Currency
}
