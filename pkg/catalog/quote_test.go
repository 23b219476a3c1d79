package catalog

import (
	"math"
	"math/big"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tallyhq/tally/pkg/money"
)

func oneModel(t testing.TB, dims ...Dimension) *Catalog {
	t.Helper()
	c, err := New(7, []ModelVersion{{
		ID: "v1", ModelID: "m", DisplayName: "M", Modality: ModalityLLM, Currency: "USD",
		Dimensions: dims, EffectiveFrom: epoch, CatalogVersion: 7,
	}}, nil)
	require.NoError(t, err)
	return c
}

func TestQuoteTotals(t *testing.T) {
	t.Parallel()
	tokens := []Dimension{
		{Unit: "input_tokens", Price: 590_000_000, Per: 1_000_000},  // $0.59 / 1M: 590 nanos a token
		{Unit: "output_tokens", Price: 790_000_000, Per: 1_000_000}, // $0.79 / 1M
	}
	thirds := []Dimension{ // $0.000000001 per 3 units: every line has a fractional nano
		{Unit: "a", Price: 1, Per: 3},
		{Unit: "b", Price: 1, Per: 3},
		{Unit: "c", Price: 2, Per: 3},
	}
	tests := []struct {
		name      string
		dims      []Dimension
		usage     map[string]string
		wantTotal money.Nanos
		wantLines []money.Nanos
	}{
		{
			name: "llm tokens exact", dims: tokens,
			usage:     map[string]string{"input_tokens": "1200", "output_tokens": "350"},
			wantTotal: 1200*590 + 350*790, wantLines: []money.Nanos{708_000, 276_500},
		},
		{
			name: "stt per minute: 12.5 s at $0.006/60 s", dims: []Dimension{{Unit: "audio_seconds", Price: 6_000_000, Per: 60}},
			usage: map[string]string{"audio_seconds": "12.5"}, wantTotal: 1_250_000, wantLines: []money.Nanos{1_250_000},
		},
		{
			name: "one fractional nano rounds up", dims: []Dimension{{Unit: "characters", Price: 15_000_000, Per: 1000}},
			usage: map[string]string{"characters": "0.0000001"}, wantTotal: 1, wantLines: []money.Nanos{1},
		},
		{
			name: "fractions summed before the one rounding: 1/3 + 1/3 -> 1", dims: thirds,
			usage: map[string]string{"a": "1", "b": "1"}, wantTotal: 1, wantLines: []money.Nanos{1, 1},
		},
		{
			name: "two fractions above one nano: 2/3 + 2/3 -> 2", dims: thirds,
			usage: map[string]string{"a": "2", "b": "2"}, wantTotal: 2, wantLines: []money.Nanos{1, 1},
		},
		{
			name: "fractions adding up to exactly one: 1/3 + 2/3 -> 1", dims: thirds,
			usage: map[string]string{"a": "1", "c": "1"}, wantTotal: 1, wantLines: []money.Nanos{1, 1},
		},
		{
			name: "three fractions: 1/3 + 1/3 + 2/3 -> 2", dims: thirds,
			usage: map[string]string{"a": "1", "b": "1", "c": "1"}, wantTotal: 2, wantLines: []money.Nanos{1, 1, 1},
		},
		{
			name: "zero quantity is free", dims: tokens,
			usage: map[string]string{"input_tokens": "0"}, wantTotal: 0, wantLines: []money.Nanos{0},
		},
		{
			name: "the largest quantity at a large price", dims: []Dimension{{Unit: "images", Price: 1_000_000_000, Per: 1_000_000}},
			usage: map[string]string{"images": "1000000000000000"}, wantTotal: 1e18, wantLines: []money.Nanos{1e18},
		},
		{
			name: "fractional quantity with a huge per takes the exact path", dims: []Dimension{{Unit: "requests", Price: 7, Per: 1_000_000_000_000}},
			usage: map[string]string{"requests": "999999999999.5"}, wantTotal: 7, wantLines: []money.Nanos{7},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			usage, err := ParseUsage(tt.usage)
			require.NoError(t, err)
			q, err := oneModel(t, tt.dims...).Quote("m", usage, epoch.Add(time.Hour))
			require.NoError(t, err)
			require.Equal(t, tt.wantTotal, q.Total)
			require.Equal(t, "v1", q.VersionID)
			require.Equal(t, int64(7), q.CatalogVersion)
			require.Equal(t, "USD", q.Currency)
			var lines []money.Nanos
			for _, l := range q.Lines {
				lines = append(lines, l.Amount)
			}
			require.Equal(t, tt.wantLines, lines)
			require.Equal(t, tt.wantTotal, exactTotal(t, q), "total is the exact sum rounded up once")
		})
	}
}

// exactTotal recomputes a quote's total from its lines with big.Rat and the platform's rounding.
func exactTotal(t testing.TB, q Quote) money.Nanos {
	sum := new(big.Rat)
	for _, l := range q.Lines {
		sum.Add(sum, new(big.Rat).Mul(l.Quantity.Rat(), big.NewRat(int64(l.UnitPrice), l.Per)))
	}
	n, err := money.MulDivCeil(sum, 1, 1)
	require.NoError(t, err)
	return n
}

func TestQuoteErrors(t *testing.T) {
	t.Parallel()
	c := oneModel(t, Dimension{Unit: "input_tokens", Price: 1_000_000_000_000_000_000, Per: 1})
	tests := []struct {
		name  string
		model string
		usage Usage
		at    time.Time
		want  error
	}{
		{"unknown model", "x", Usage{"input_tokens": QuantityOf(1)}, epoch, ErrUnknownModel},
		{"no price in force", "m", Usage{"input_tokens": QuantityOf(1)}, epoch.Add(-time.Hour), ErrNoPriceInForce},
		{"unknown dimension", "m", Usage{"input_tokens": QuantityOf(1), "images": QuantityOf(1)}, epoch, ErrUnknownDimension},
		{"negative quantity", "m", Usage{"input_tokens": QuantityOf(-1)}, epoch, ErrInvalidQuantity},
		{"absurd quantity", "m", Usage{"input_tokens": QuantityOf(MaxQuantity + 1)}, epoch, ErrInvalidQuantity},
		{"empty usage", "m", Usage{}, epoch, ErrInvalidQuantity},
		{"overflowing charge", "m", Usage{"input_tokens": QuantityOf(10)}, epoch, ErrInvalidQuantity},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := c.Quote(tt.model, tt.usage, tt.at)
			require.ErrorIs(t, err, tt.want)
		})
	}
}

// TestQuoteFastPathMatchesRationals checks the 64-bit arithmetic against big.Rat on random prices
// and quantities, including per values that force the fallback.
func TestQuoteFastPathMatchesRationals(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(1, 2))
	pers := []int64{1, 3, 7, 60, 1000, 1_000_000, 999_999_937, 1_000_000_000_000}
	for i := 0; i < 20000; i++ {
		n := 1 + r.IntN(4)
		lines := make([]Line, n)
		for j := range lines {
			q := Quantity{whole: r.Int64N(MaxQuantity / pow10(r.IntN(16)))}
			if r.IntN(2) == 0 {
				q.nano = int32(r.IntN(nanosPerUnit))
			}
			lines[j] = Line{Quantity: q, UnitPrice: money.Nanos(r.Int64N(pow10(r.IntN(13)) + 1)), Per: pers[r.IntN(len(pers))]}
		}
		want := make([]Line, n)
		copy(want, lines)
		var fast, slow money.Nanos
		errFast := priceLines(lines, &fast)
		errSlow := priceLinesRat(want, &slow)
		if errSlow != nil {
			require.Error(t, errFast, "case %d: %+v", i, want)
			continue
		}
		require.NoError(t, errFast, "case %d: %+v", i, want)
		require.Equal(t, slow, fast, "case %d: %+v", i, want)
		require.Equal(t, want, lines, "case %d", i)
	}
}

func pow10(n int) int64 { return int64(math.Pow10(n)) }

func FuzzQuoteFastPath(f *testing.F) {
	f.Add(int64(1200), int32(0), int64(590_000_000), int64(1_000_000), int64(1), int32(1), int64(1), int64(3))
	f.Fuzz(func(t *testing.T, w1 int64, n1 int32, p1, per1, w2 int64, n2 int32, p2, per2 int64) {
		norm := func(w int64, n int32, p, per int64) Line {
			return Line{
				Quantity:  Quantity{whole: abs(w) % (MaxQuantity + 1), nano: int32(abs(int64(n)) % nanosPerUnit)},
				UnitPrice: money.Nanos(abs(p)),
				Per:       abs(per)%maxPer + 1,
			}
		}
		lines := []Line{norm(w1, n1, p1, per1), norm(w2, n2, p2, per2)}
		for _, l := range lines {
			if l.Quantity.check() != nil {
				return
			}
		}
		want := append([]Line(nil), lines...)
		var fast, slow money.Nanos
		errFast, errSlow := priceLines(lines, &fast), priceLinesRat(want, &slow)
		if errSlow != nil {
			require.Error(t, errFast)
			return
		}
		require.NoError(t, errFast)
		require.Equal(t, slow, fast)
		require.Equal(t, want, lines)
	})
}

func abs(n int64) int64 {
	if n == math.MinInt64 {
		return math.MaxInt64
	}
	if n < 0 {
		return -n
	}
	return n
}
