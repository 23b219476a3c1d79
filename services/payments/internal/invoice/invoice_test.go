package invoice

import (
	"bytes"
	"io"
	"os"
	"testing"
	"time"

	"github.com/ledongthuc/pdf"
	"github.com/stretchr/testify/require"

	"github.com/tallyhq/tally/pkg/money"
	"github.com/tallyhq/tally/services/payments/internal/payment"
)

func sample(kind payment.DocumentKind) Document {
	at := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	return Document{
		Kind: kind, Number: "INV-2026-000042", IssuedAt: at, PaidAt: at,
		Seller:   Seller{Name: "Tally GmbH", Address: "1 Ledger Street\n10115 Berlin", TaxID: "DE123456789", Email: "billing@tally.test"},
		Customer: payment.BillingProfile{OrgID: "acme", LegalName: "Acme Widgets Ltd — Zürich", Address: "5 Main Street\nSpringfield", TaxID: "CHE-1", Email: "ap@acme.test"},
		Amount:   money.Money{Nanos: 1234_500_000_000, Currency: "EUR"}, Description: "Credits", PaymentMethod: "Card (Stripe Checkout)",
		PaidBy: payment.Member{ID: "u1", Name: "Ann Example", Email: "ann@acme.test"}, Reference: "cs_test_1",
		CreditsInvoice: "INV-2026-000001", Reason: "customer asked",
	}
}

func text(t *testing.T, b []byte) string {
	t.Helper()
	r, err := pdf.NewReader(bytes.NewReader(b), int64(len(b)))
	require.NoError(t, err)
	rd, err := r.GetPlainText()
	require.NoError(t, err)
	out, err := io.ReadAll(rd)
	require.NoError(t, err)
	return string(out)
}

func TestRender(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		kind payment.DocumentKind
		want []string
	}{
		{payment.KindInvoice, []string{"Invoice", "INV-2026-000042", "1234.50 EUR", "Acme Widgets Ltd", "Zürich", "Tally GmbH", "DE123456789", "Ann Example", "25 November 2026"}},
		{payment.KindCreditNote, []string{"Credit note", "-1234.50 EUR", "INV-2026-000001", "customer asked"}},
	} {
		t.Run(string(tc.kind), func(t *testing.T) {
			t.Parallel()
			b, err := Render(sample(tc.kind))
			require.NoError(t, err)
			require.True(t, bytes.HasPrefix(b, []byte("%PDF-")))
			got := text(t, b)
			for _, w := range tc.want {
				require.Contains(t, got, w)
			}
			again, err := Render(sample(tc.kind))
			require.NoError(t, err)
			require.Equal(t, b, again, "rendering is deterministic")
			if dir := os.Getenv("TALLY_INVOICE_DUMP_DIR"); dir != "" {
				require.NoError(t, os.WriteFile(dir+"/"+string(tc.kind)+".pdf", b, 0o600))
			}
		})
	}
	_, err := Render(Document{})
	require.Error(t, err)
}
