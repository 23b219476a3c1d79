// Package pricing holds the pricing service's domain: audited price changes, their validation and
// idempotency fingerprint, and the seed catalog format. The price list itself, its versions and
// quotes live in pkg/catalog, shared with the services that price usage.
package pricing

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/tallyhq/tally/pkg/catalog"
	"github.com/tallyhq/tally/pkg/fieldviolation"
	"github.com/tallyhq/tally/pkg/textcheck"
)

// Errors of price changes; catalog errors (catalog.ErrInvalidPrice …) pass through unchanged.
var (
	ErrInvalid             = errors.New("invalid request")
	ErrIdempotencyConflict = errors.New("idempotency key already used for another change")
)

// MaxBackdate is how far in the past an explicit effective_from may lie; such a time is moved
// to now. Anything older would rewrite history and is refused.
const MaxBackdate = time.Minute

// Limits of the audit fields.
const (
	maxReasonLen = 1000
	maxKeyLen    = 200
)

// Audit is who asks for a change, why, and the key that makes a retry safe.
type Audit struct {
	// Actor is the subject of the caller's token.
	Actor          string
	Reason         string
	IdempotencyKey string
}

func (a Audit) validate() error {
	switch {
	case a.Actor == "":
		return fmt.Errorf("%w: the caller has no identity", ErrInvalid)
	case strings.TrimSpace(a.Reason) == "":
		return fmt.Errorf("%w: %w", ErrInvalid, fieldviolation.Invalid("reason", "is required"))
	case a.IdempotencyKey == "":
		return fmt.Errorf("%w: %w", ErrInvalid, fieldviolation.Invalid("idempotency_key", "is required"))
	}
	if err := textcheck.FreeText("reason", a.Reason, maxReasonLen); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if err := textcheck.Identifier("idempotency_key", a.IdempotencyKey, maxKeyLen); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return nil
}

// ModelChange asks for a new price version of a model. Version.ID, CatalogVersion and CreatedAt
// are assigned when it is stored; a zero EffectiveFrom means now.
type ModelChange struct {
	Version catalog.ModelVersion
	Audit
}

// InstanceChange asks for a new price version of an instance type, like ModelChange.
type InstanceChange struct {
	Version catalog.InstanceVersion
	Audit
}

// effectiveFrom resolves the requested effective time against now: zero or slightly in the past
// (clock skew) is now, further in the past is refused.
func effectiveFrom(requested, now time.Time) (time.Time, error) {
	if requested.IsZero() {
		return now, nil
	}
	if requested.Before(now.Add(-MaxBackdate)) {
		return time.Time{}, fmt.Errorf("%w: effective_from %s lies in the past; price history is immutable",
			ErrInvalid, requested.UTC().Format(time.RFC3339))
	}
	if requested.Before(now) {
		return now, nil
	}
	return requested, nil
}

// Prepare validates c at time now and returns it with its effective time resolved, plus the
// fingerprint of the request as sent, which a replay with the same idempotency key must match.
func (c ModelChange) Prepare(now time.Time) (ModelChange, string, error) {
	if err := c.validate(); err != nil { // the embedded Audit's
		return ModelChange{}, "", err
	}
	hash, err := fingerprint("model", c.Version, c.Reason)
	if err != nil {
		return ModelChange{}, "", err
	}
	eff, err := effectiveFrom(c.Version.EffectiveFrom, now)
	if err != nil {
		return ModelChange{}, "", err
	}
	c.Version.EffectiveFrom = eff
	if err := c.Version.Validate(); err != nil {
		return ModelChange{}, "", err
	}
	return c, hash, nil
}

// Prepare validates c at time now like ModelChange.Prepare.
func (c InstanceChange) Prepare(now time.Time) (InstanceChange, string, error) {
	if err := c.validate(); err != nil { // the embedded Audit's
		return InstanceChange{}, "", err
	}
	hash, err := fingerprint("instance", c.Version, c.Reason)
	if err != nil {
		return InstanceChange{}, "", err
	}
	eff, err := effectiveFrom(c.Version.EffectiveFrom, now)
	if err != nil {
		return InstanceChange{}, "", err
	}
	c.Version.EffectiveFrom = eff
	if err := c.Version.Validate(); err != nil {
		return InstanceChange{}, "", err
	}
	return c, hash, nil
}

// fingerprint hashes a change request as sent (an omitted effective_from stays omitted, so a
// retry later still matches).
func fingerprint(kind string, version any, reason string) (string, error) {
	b, err := json.Marshal(struct {
		Kind    string
		Version any
		Reason  string
	}{kind, version, reason})
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), nil
}
