// Package invoice renders invoices and credit notes as PDF with go-pdf/fpdf. Rendering is
// deterministic: the same document renders to the same bytes, which are stored once, immutably.
package invoice

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/go-pdf/fpdf"

	"github.com/tallyhq/tally/pkg/money"
	"github.com/tallyhq/tally/services/payments/internal/payment"
)

// Seller is the issuer printed on every document (from configuration).
type Seller struct {
	Name    string
	Address string
	TaxID   string
	Email   string
}

// Document is everything printed on one invoice or credit note.
type Document struct {
	Kind     payment.DocumentKind
	Number   string
	IssuedAt time.Time
	// PaidAt is the payment date (invoices).
	PaidAt   time.Time
	Seller   Seller
	Customer payment.BillingProfile
	// Amount is the line total: the payment for an invoice, the refund for a credit note.
	Amount        money.Money
	Description   string
	PaymentMethod string
	PaidBy        payment.Member
	// Reference is the Checkout Session (invoices) or the refund (credit notes).
	Reference string
	// CreditsInvoice is the invoice a credit note corrects.
	CreditsInvoice string
	Reason         string
	TestMode       bool
}

// Render returns the PDF of d.
func Render(d Document) ([]byte, error) {
	if d.Number == "" || d.Amount.Currency == "" {
		return nil, errors.New("invoice: number and amount are required")
	}
	pdf := fpdf.New("P", "mm", "A4", "")
	pdf.SetCreationDate(d.IssuedAt.UTC())
	pdf.SetModificationDate(d.IssuedAt.UTC())
	pdf.SetCatalogSort(true)
	pdf.SetTitle(d.title()+" "+d.Number, true)
	pdf.SetAuthor(d.Seller.Name, true)
	pdf.SetCreator("tally payments", true)
	pdf.SetMargins(20, 20, 20)
	pdf.SetAutoPageBreak(true, 20)
	pdf.AddPage()
	tr := pdf.UnicodeTranslatorFromDescriptor("") // UTF-8 to the core fonts' cp1252

	writeHeading(pdf, tr, d)
	writeParties(pdf, tr, d)
	writeDetails(pdf, tr, d)
	writeAmount(pdf, tr, d)

	if err := pdf.Error(); err != nil {
		return nil, fmt.Errorf("rendering pdf: %w", err)
	}
	var buf bytes.Buffer
	if err := pdf.Output(&buf); err != nil {
		return nil, fmt.Errorf("writing pdf: %w", err)
	}
	return buf.Bytes(), nil
}

// title is what the document is: an invoice or a credit note.
func (d Document) title() string {
	if d.Kind == payment.KindCreditNote {
		return "Credit note"
	}
	return "Invoice"
}

// writeHeading prints the title, the number and the test-mode warning.
func writeHeading(pdf *fpdf.Fpdf, tr func(string) string, d Document) {
	pdf.SetFont("Helvetica", "B", 20)
	pdf.CellFormat(100, 10, tr(d.title()), "", 0, "L", false, 0, "")
	pdf.SetFont("Helvetica", "", 10)
	pdf.CellFormat(0, 10, tr(d.Number), "", 1, "R", false, 0, "")
	if d.TestMode {
		pdf.SetTextColor(200, 0, 0)
		pdf.SetFont("Helvetica", "B", 10)
		pdf.CellFormat(0, 6, "TEST MODE - no money was charged", "", 1, "L", false, 0, "")
		pdf.SetTextColor(0, 0, 0)
	}
	pdf.Ln(4)
}

// writeParties prints the seller and the customer side by side.
func writeParties(pdf *fpdf.Fpdf, tr func(string) string, d Document) {
	y := pdf.GetY()
	bottom := block(pdf, tr, 20, y, "From", d.Seller.Name, d.Seller.Address, taxLine(d.Seller.TaxID), d.Seller.Email)
	customer := d.Customer.LegalName
	if customer == "" {
		customer = "Organization " + d.Customer.OrgID
	}
	bottom = max(bottom, block(pdf, tr, 110, y, "Bill to", customer, d.Customer.Address, taxLine(d.Customer.TaxID), d.Customer.Email))
	pdf.SetXY(20, bottom)
	pdf.Ln(4)
}

// writeDetails prints the labelled facts: number, dates, what a credit note corrects, payment.
func writeDetails(pdf *fpdf.Fpdf, tr func(string) string, d Document) {
	pdf.SetFont("Helvetica", "", 10)
	kv := [][2]string{{d.title() + " number", d.Number}, {"Date of issue", d.IssuedAt.UTC().Format("2 January 2006")}}
	if d.Kind == payment.KindCreditNote {
		kv = append(kv, [2]string{"Credits invoice", d.CreditsInvoice})
		if d.Reason != "" {
			kv = append(kv, [2]string{"Reason", d.Reason})
		}
	} else if !d.PaidAt.IsZero() {
		kv = append(kv, [2]string{"Date paid", d.PaidAt.UTC().Format("2 January 2006")})
	}
	if d.PaymentMethod != "" {
		kv = append(kv, [2]string{"Payment method", d.PaymentMethod})
	}
	if d.PaidBy.Name != "" || d.PaidBy.Email != "" {
		kv = append(kv, [2]string{"Paid by", strings.TrimSpace(d.PaidBy.Name + " " + angle(d.PaidBy.Email))})
	}
	if d.Reference != "" {
		kv = append(kv, [2]string{"Reference", d.Reference})
	}
	for _, row := range kv {
		pdf.SetFont("Helvetica", "B", 10)
		pdf.CellFormat(45, 6, tr(row[0]), "", 0, "L", false, 0, "")
		pdf.SetFont("Helvetica", "", 10)
		pdf.CellFormat(0, 6, tr(row[1]), "", 1, "L", false, 0, "")
	}
	pdf.Ln(8)
}

// writeAmount prints the line, the total and the closing note.
func writeAmount(pdf *fpdf.Fpdf, tr func(string) string, d Document) {
	amount := payment.FormatMinor(d.Amount)
	if d.Kind == payment.KindCreditNote {
		amount = "-" + amount
	}
	pdf.SetFillColor(235, 235, 235)
	pdf.SetFont("Helvetica", "B", 10)
	pdf.CellFormat(100, 8, "Description", "B", 0, "L", true, 0, "")
	pdf.CellFormat(20, 8, "Qty", "B", 0, "R", true, 0, "")
	pdf.CellFormat(0, 8, "Amount", "B", 1, "R", true, 0, "")
	pdf.SetFont("Helvetica", "", 10)
	desc := d.Description
	if desc == "" {
		desc = "Credits"
	}
	pdf.CellFormat(100, 8, tr(desc), "", 0, "L", false, 0, "")
	pdf.CellFormat(20, 8, "1", "", 0, "R", false, 0, "")
	pdf.CellFormat(0, 8, amount, "", 1, "R", false, 0, "")
	pdf.SetFont("Helvetica", "B", 11)
	pdf.CellFormat(120, 10, "Total", "T", 0, "L", false, 0, "")
	pdf.CellFormat(0, 10, amount, "T", 1, "R", false, 0, "")
	pdf.Ln(6)
	pdf.SetFont("Helvetica", "", 8)
	note := "Prepaid credits, valid for the period stated in your agreement. Amounts in " + d.Amount.Currency + "."
	if d.Kind == payment.KindCreditNote {
		note = "This credit note corrects invoice " + d.CreditsInvoice + ". The refund is returned to the original payment method."
	}
	pdf.MultiCell(0, 4, tr(note), "", "L", false)
}

// block prints a labelled address block at (x, y) and returns where it ends.
func block(pdf *fpdf.Fpdf, tr func(string) string, x, y float64, label string, lines ...string) float64 {
	pdf.SetXY(x, y)
	pdf.SetFont("Helvetica", "B", 9)
	pdf.CellFormat(85, 5, tr(label), "", 2, "L", false, 0, "")
	pdf.SetFont("Helvetica", "", 10)
	for _, l := range lines {
		for part := range strings.SplitSeq(strings.TrimSpace(l), "\n") {
			if part = strings.TrimSpace(part); part != "" {
				pdf.SetX(x)
				pdf.MultiCell(85, 5, tr(part), "", "L", false)
			}
		}
	}
	return pdf.GetY()
}

func taxLine(id string) string {
	if id == "" {
		return ""
	}
	return "Tax ID: " + id
}

func angle(email string) string {
	if email == "" {
		return ""
	}
	return "<" + email + ">"
}
