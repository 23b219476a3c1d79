package catalog

import (
	"testing"
	"time"
)

func BenchmarkQuote(b *testing.B) {
	c := testCatalog(b)
	at := epoch.Add(1500 * time.Hour)
	cases := []struct {
		name  string
		model string
		usage Usage
	}{
		{"llm_integer_tokens", "llm-a", Usage{"input_tokens": QuantityOf(1834), "output_tokens": QuantityOf(412)}},
		{"stt_fractional_seconds", "stt", Usage{"audio_seconds": QuantityOf(12).withNano(345_000_000)}},
	}
	for _, bc := range cases {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.Quote(bc.model, bc.usage, at); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkQuoteRational is the big.Rat reference path, for comparison.
func BenchmarkQuoteRational(b *testing.B) {
	lines := []Line{
		{Quantity: QuantityOf(1834), UnitPrice: 590_000_000, Per: 1_000_000},
		{Quantity: QuantityOf(412), UnitPrice: 790_000_000, Per: 1_000_000},
	}
	b.ReportAllocs()
	for b.Loop() {
		var total Quote
		if err := priceLinesRat(lines, &total.Total); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseUsage(b *testing.B) {
	wire := map[string]string{"input_tokens": "1834", "output_tokens": "412"}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseUsage(wire); err != nil {
			b.Fatal(err)
		}
	}
}

func (q Quantity) withNano(n int32) Quantity { q.nano = n; return q }
