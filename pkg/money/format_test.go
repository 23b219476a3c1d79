package money

import (
	"encoding/json"
	"os"
	"strconv"
	"testing"
)

// formatCase is one row of testdata/format.json, which the console's money tests read too
// (web/test/money-shared.test.ts): the two formatters cannot drift apart.
type formatCase struct {
	CurrencyCode string `json:"currencyCode"`
	Units        string `json:"units"`
	Nanos        int64  `json:"nanos"`
	Want         string `json:"want"`
}

func TestFormatAgreesWithTheConsole(t *testing.T) {
	raw, err := os.ReadFile("testdata/format.json")
	if err != nil {
		t.Fatal(err)
	}
	var cases []formatCase
	if err := json.Unmarshal(raw, &cases); err != nil {
		t.Fatal(err)
	}
	if len(cases) == 0 {
		t.Fatal("no cases in testdata/format.json")
	}
	for _, c := range cases {
		units, err := strconv.ParseInt(c.Units, 10, 64)
		if err != nil {
			t.Fatalf("%+v: %v", c, err)
		}
		m := Money{Nanos: Nanos(units*NanosPerUnit + c.Nanos), Currency: c.CurrencyCode}
		if got := Format(m); got != c.Want {
			t.Errorf("Format(%s %s+%dn) = %q, want %q", c.CurrencyCode, c.Units, c.Nanos, got, c.Want)
		}
	}
}

func TestMinorDigits(t *testing.T) {
	for code, want := range map[string]int{"USD": 2, "usd": 2, "JPY": 0, "BHD": 3, "XYZ": 2, "HUF": 0} {
		if got := MinorDigits(code); got != want {
			t.Errorf("MinorDigits(%s) = %d, want %d", code, got, want)
		}
	}
}
