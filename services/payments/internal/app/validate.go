package app

import (
	"fmt"
	"net/mail"
	"strings"

	"github.com/tallyhq/tally/pkg/ids"
	"github.com/tallyhq/tally/pkg/textcheck"
	"github.com/tallyhq/tally/services/payments/internal/payment"
)

// Limits of a billing profile, in bytes.
const (
	maxLegalNameLength = 200
	maxAddressLength   = 1000
	maxTaxIDLength     = 64
	maxEmailLength     = 254
)

// ValidateReason checks a required free-text reason (of a refund, of a review item's
// resolution): 1 to 500 bytes of text by the platform's rule (pkg/textcheck).
func ValidateReason(field, s string) error {
	if strings.TrimSpace(s) == "" {
		return fmt.Errorf("%w: %s is required", payment.ErrInvalid, field)
	}
	if err := textcheck.FreeText(field, s, maxReasonLength); err != nil {
		return fmt.Errorf("%w: %w", payment.ErrInvalid, err)
	}
	return nil
}

// ValidateBillingProfile checks a billing profile and returns it with surrounding spaces
// trimmed: a valid organization, free text within its limits (the address may span lines, the
// other fields may not) and an email address, when one is given, that is just an address.
func ValidateBillingProfile(bp payment.BillingProfile) (payment.BillingProfile, error) {
	if err := ids.OrgID(bp.OrgID); err != nil {
		return payment.BillingProfile{}, err
	}
	bp.LegalName, bp.Address = strings.TrimSpace(bp.LegalName), strings.TrimSpace(bp.Address)
	bp.TaxID, bp.Email = strings.TrimSpace(bp.TaxID), strings.TrimSpace(bp.Email)
	for _, f := range []struct {
		name, value string
		limit       int
		multiline   bool
	}{
		{"legal_name", bp.LegalName, maxLegalNameLength, false},
		{"address", bp.Address, maxAddressLength, true},
		{"tax_id", bp.TaxID, maxTaxIDLength, false},
		{"email", bp.Email, maxEmailLength, false},
	} {
		if err := textcheck.FreeText(f.name, f.value, f.limit); err != nil {
			return payment.BillingProfile{}, fmt.Errorf("%w: %w", payment.ErrInvalid, err)
		}
		if !f.multiline && strings.ContainsAny(f.value, "\t\n") {
			return payment.BillingProfile{}, fmt.Errorf("%w: %s must be a single line", payment.ErrInvalid, f.name)
		}
	}
	if bp.Email != "" {
		if addr, err := mail.ParseAddress(bp.Email); err != nil || addr.Address != bp.Email {
			return payment.BillingProfile{}, fmt.Errorf("%w: email %s is not an email address", payment.ErrInvalid, textcheck.Quote(bp.Email))
		}
	}
	return bp, nil
}
