package money

import "strings"

// Format formats an amount for people exactly the way the console does (web/src/money.ts,
// formatMoney with the en-US locale), so a page, an email and the checkout page agree to the
// character: every significant nano is shown (amounts are never rounded for display), at least
// the currency's minor digits, thousands grouped, and the currency's symbol — "$1,234.50",
// "-$0.0000015", "¥1,200", "BHD 1.250". pkg/money/testdata/format.json holds the cases both
// implementations are tested against.
func Format(m Money) string {
	code := strings.ToUpper(m.Currency)
	s := m.Nanos.String() // "-1234.500000000": sign, integer part, nine fractional digits
	negative := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	dot := strings.IndexByte(s, '.')
	intPart, frac := s[:dot], strings.TrimRight(s[dot+1:], "0")
	for minor := MinorDigits(code); len(frac) < minor; {
		frac += "0"
	}
	body := groupThousands(intPart)
	if frac != "" {
		body += "." + frac
	}
	sym, ok := currencySymbols[code]
	if !ok {
		sym = code + "\u00a0"
	}
	if negative && m.Nanos != 0 {
		return "-" + sym + body
	}
	return sym + body
}

// MinorDigits is the number of fractional digits people write for a currency (ICU's data, as
// the console's Intl reports it): 0 for JPY, 3 for BHD, 2 for most.
func MinorDigits(currency string) int {
	code := strings.ToUpper(currency)
	switch {
	case strings.Contains(zeroMinorDigits, code+" "):
		return 0
	case strings.Contains(threeMinorDigits, code+" "):
		return 3
	}
	return 2
}

const (
	zeroMinorDigits  = "AFN ALL BIF CLP COP DJF GNF HUF IDR IQD IRR ISK JPY KMF KPW KRW LAK LBP MGA MMK PKR PYG RWF SOS SYP UGX VND VUV XAF XOF XPF YER "
	threeMinorDigits = "BHD JOD KWD LYD OMR TND "
)

// currencySymbols are the en-US symbols (with the separator that follows them); any other
// currency is written with its code and a no-break space.
var currencySymbols = map[string]string{
	"AUD": "A$", "BRL": "R$", "CAD": "CA$", "CNY": "CN¥", "EUR": "€", "GBP": "£", "HKD": "HK$",
	"ILS": "₪", "INR": "₹", "JPY": "¥", "KRW": "₩", "MXN": "MX$", "NZD": "NZ$", "PHP": "₱",
	"TWD": "NT$", "USD": "$", "VND": "₫", "XAF": "FCFA\u00a0", "XCD": "EC$", "XCG": "Cg.\u00a0",
	"XOF": "F\u202fCFA\u00a0", "XPF": "CFPF\u00a0",
}

func groupThousands(digits string) string {
	if len(digits) <= 3 {
		return digits
	}
	var b strings.Builder
	lead := len(digits) % 3
	if lead > 0 {
		b.WriteString(digits[:lead])
	}
	for i := lead; i < len(digits); i += 3 {
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(digits[i : i+3])
	}
	return b.String()
}
