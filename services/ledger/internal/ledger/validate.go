package ledger

import (
	"fmt"
	"time"

	"github.com/tallyhq/tally/pkg/fieldviolation"
	"github.com/tallyhq/tally/pkg/ids"
	"github.com/tallyhq/tally/pkg/textcheck"
)

// Limits on request fields.
const (
	// MaxIDLength bounds model ids and hold ids; organization ids and idempotency keys follow
	// pkg/ids.
	MaxIDLength          = 128
	MaxTextLength        = 1000
	MaxMetadataEntries   = 32
	MaxMetadataKeyLength = 64
	MaxMetadataValLength = 512
	MinHoldTTL           = time.Second
	MaxHoldTTL           = 24 * time.Hour
	DefaultHoldTTL       = 15 * time.Minute
	// MaxUsageAge is how old a usage may be when it is debited: a month of billing and a few
	// days of slack. Older usage is charged with an amount.
	MaxUsageAge = 35 * 24 * time.Hour
)

// Invalid returns the refusal of a check of pkg/ids as ErrInvalid (nil when it passed), e.g.
// ledger.Invalid(ids.OrgID(id)).
func Invalid(err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%w: %w", ErrInvalid, err)
}

// identifier applies the platform's rule for identifiers and keys (pkg/textcheck).
func identifier(field, s string, limit int) error {
	if err := textcheck.Identifier(field, s, limit); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return nil
}

// freeText applies the platform's rule for free text (pkg/textcheck).
func freeText(field, s string, limit int) error {
	if err := textcheck.FreeText(field, s, limit); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return nil
}

// MaxUsageUnits bounds the units of one usage.
const MaxUsageUnits = 32

// ValidateUsage checks the shape of a usage; the price list checks units and quantities.
func ValidateUsage(u *Usage) error {
	if u.ModelID == "" {
		return fmt.Errorf("%w: %w", ErrInvalid, fieldviolation.Invalid("usage.model_id", "is required"))
	}
	if err := identifier("usage.model_id", u.ModelID, MaxIDLength); err != nil {
		return err
	}
	if len(u.Quantities) == 0 {
		return fmt.Errorf("%w: %w", ErrInvalid, fieldviolation.Invalid("usage.quantities", "must name at least one unit"))
	}
	if len(u.Quantities) > MaxUsageUnits {
		return fmt.Errorf("%w: at most %d usage units", ErrInvalid, MaxUsageUnits)
	}
	for unit, q := range u.Quantities {
		if err := identifier("usage.quantities key", unit, MaxMetadataKeyLength); err != nil {
			return err
		}
		if err := identifier("usage.quantities value", q, 64); err != nil {
			return err
		}
	}
	return nil
}

// Validate checks a request before it reaches the database. Amount and currency have already
// been converted from google.type.Money by the caller.
func (r *Request) Validate() error {
	if r.Op != OpCapture && r.Op != OpRelease {
		if err := Invalid(ids.OrgID(r.OrgID)); err != nil {
			return err
		}
	}
	switch r.Op {
	case OpCredit, OpDebit, OpReserve:
		if r.Amount <= 0 {
			return fmt.Errorf("%w: %w", ErrInvalid, fieldviolation.Invalid("amount", "must be positive"))
		}
	case OpAdjust:
		if r.Amount == 0 {
			return fmt.Errorf("%w: %w", ErrInvalid, fieldviolation.Invalid("amount", "must not be zero"))
		}
		if r.Reason == "" {
			return fmt.Errorf("%w: %w", ErrInvalid, fieldviolation.Invalid("reason", "is required for an adjustment"))
		}
	case OpCapture:
		if r.Amount < 0 {
			return fmt.Errorf("%w: %w", ErrInvalid, fieldviolation.Invalid("amount", "must not be negative"))
		}
	}
	switch r.Op {
	case OpCapture, OpRelease:
		if r.HoldID == "" {
			return fmt.Errorf("%w: %w", ErrInvalid, fieldviolation.Invalid("hold_id", "is required"))
		}
		if err := identifier("hold_id", r.HoldID, MaxIDLength); err != nil {
			return err
		}
	}
	switch r.Op {
	case OpCredit, OpDebit, OpAdjust, OpReserve, OpCapture:
		if r.IdempotencyKey == "" {
			return fmt.Errorf("%w: %w", ErrInvalid, fieldviolation.Invalid("idempotency_key", "is required"))
		}
	}
	if r.Op == OpReserve && (r.TTL < MinHoldTTL || r.TTL > MaxHoldTTL) {
		return fmt.Errorf("%w: ttl must be between %s and %s", ErrInvalid, MinHoldTTL, MaxHoldTTL)
	}
	if r.Usage != nil {
		if r.Op != OpDebit {
			return fmt.Errorf("%w: %w", ErrInvalid, fieldviolation.Invalid("usage", "is accepted on debits only"))
		}
		if err := ValidateUsage(r.Usage); err != nil {
			return err
		}
	}
	if r.Source != "" && r.Source != SourcePayment && r.Source != SourceGrant {
		return fmt.Errorf("%w: unknown credit source %s", ErrInvalid, textcheck.Quote(string(r.Source)))
	}
	if r.IdempotencyKey != "" {
		if err := Invalid(ids.IdempotencyKey("idempotency_key", r.IdempotencyKey)); err != nil {
			return err
		}
	}
	for _, f := range []struct{ name, v string }{{"description", r.Description}, {"reason", r.Reason}, {"reference", r.Reference}} {
		if err := freeText(f.name, f.v, MaxTextLength); err != nil {
			return err
		}
	}
	if len(r.Metadata) > MaxMetadataEntries {
		return fmt.Errorf("%w: at most %d metadata entries", ErrInvalid, MaxMetadataEntries)
	}
	for k, v := range r.Metadata {
		if k == "" {
			return fmt.Errorf("%w: %w", ErrInvalid, fieldviolation.Invalid("metadata", "keys must not be empty"))
		}
		if err := identifier("metadata key", k, MaxMetadataKeyLength); err != nil {
			return err
		}
		if err := freeText("metadata value", v, MaxMetadataValLength); err != nil {
			return err
		}
	}
	return nil
}
