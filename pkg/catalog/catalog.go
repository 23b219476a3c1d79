// Package catalog is tally's price list as data: every version of every model and instance-type
// price, the rule that picks the version in force at a time, and the exact quote of a usage.
//
// A Catalog does no I/O and is immutable once built, so one value can be shared by any number of
// goroutines. Watcher keeps a Catalog current by following the pricing service's WatchCatalog
// stream, so that pricing a call never costs a network hop.
//
// The version in force at a time T is the version of largest EffectiveFrom <= T; between two
// versions with the same EffectiveFrom the later change (larger CatalogVersion) wins, which is how
// ops replace a scheduled price before it takes effect.
package catalog

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/tallyhq/tally/pkg/money"
	"github.com/tallyhq/tally/pkg/textcheck"
)

// Errors of lookups and quotes. They are wrapped with context; test them with errors.Is.
var (
	// ErrUnknownModel: no version of the model exists at all.
	ErrUnknownModel = errors.New("unknown model")
	// ErrUnknownInstanceType: no version of the instance type exists at all.
	ErrUnknownInstanceType = errors.New("unknown instance type")
	// ErrUnknownDimension: the usage names a unit the model's price does not bill.
	ErrUnknownDimension = errors.New("unknown usage dimension")
	// ErrInvalidQuantity: a quantity is negative, above MaxQuantity, not a decimal, or the
	// charge it yields overflows.
	ErrInvalidQuantity = errors.New("invalid quantity")
	// ErrNoPriceInForce: the model or instance type exists but no version is in force at the time.
	ErrNoPriceInForce = errors.New("no price in force")
	// ErrTimeTooFarAhead: a usage time lies more than MaxUsageLead in the future.
	ErrTimeTooFarAhead = errors.New("usage time too far in the future")
	// ErrInvalidPrice: a price version breaks the catalog's rules (see ModelVersion.Validate).
	ErrInvalidPrice = errors.New("invalid price")
)

// MaxUsageLead is how far in the future a usage time may lie: clocks of callers drift, but usage
// that has not happened yet cannot be charged.
const MaxUsageLead = 24 * time.Hour

// CheckUsageTime returns ErrTimeTooFarAhead when at lies more than MaxUsageLead after now.
func CheckUsageTime(at, now time.Time) error {
	if at.After(now.Add(MaxUsageLead)) {
		return fmt.Errorf("%w: %s is more than %s after %s", ErrTimeTooFarAhead,
			at.UTC().Format(time.RFC3339), MaxUsageLead, now.UTC().Format(time.RFC3339))
	}
	return nil
}

// Modality is the kind of model a price applies to.
type Modality string

// Modalities known to the catalog.
const (
	ModalityLLM          Modality = "llm"
	ModalitySpeechToText Modality = "speech_to_text"
	ModalityTextToSpeech Modality = "text_to_speech"
	ModalityImage        Modality = "image"
	ModalityEmbedding    Modality = "embedding"
	ModalityVideo        Modality = "video"
	ModalityRerank       Modality = "rerank"
)

// Modalities lists every known modality.
func Modalities() []Modality {
	return []Modality{ModalityLLM, ModalitySpeechToText, ModalityTextToSpeech, ModalityImage,
		ModalityEmbedding, ModalityVideo, ModalityRerank}
}

// Valid reports whether m is a known modality.
func (m Modality) Valid() bool { return slices.Contains(Modalities(), m) }

// Dimension is one billable dimension of a model: Price per Per units of Unit.
type Dimension struct {
	// Unit of usage, e.g. "input_tokens", "audio_seconds", "characters", "images", "requests".
	Unit string
	// Price of Per units, in nanos of the version's currency.
	Price money.Nanos
	// Per is the quantity Price is quoted for, e.g. 1_000_000 tokens or 60 seconds.
	Per int64
}

// ModelVersion is one immutable price version of a model. Catalog methods return versions that
// share memory with the catalog: do not modify their Dimensions.
type ModelVersion struct {
	// ID identifies the version; every charge records the ID it was priced with.
	ID          string
	ModelID     string
	DisplayName string
	Modality    Modality
	// Currency of every dimension's price (ISO 4217).
	Currency      string
	Dimensions    []Dimension
	EffectiveFrom time.Time
	// CatalogVersion is the catalog version that created this version.
	CatalogVersion int64
	CreatedAt      time.Time
}

// InstanceVersion is one immutable price version of a rentable instance type.
type InstanceVersion struct {
	ID             string
	InstanceTypeID string
	Description    string
	// GPU is the GPU model, e.g. "NVIDIA A100 80GB"; empty for CPU-only types.
	GPU         string
	GPUCount    int32
	VCPU        int32
	MemoryGiB   int32
	HourlyPrice money.Nanos
	Currency    string
	// Available says whether new instances of this type may be created.
	Available      bool
	EffectiveFrom  time.Time
	CatalogVersion int64
	CreatedAt      time.Time
}

// Limits of a price version, enforced by Validate.
const (
	maxIDLen       = 128
	maxUnitLen     = 64
	maxDimensions  = 32
	maxPer         = 1_000_000_000_000
	maxNameLen     = 200
	maxInstanceCPU = 1 << 16
)

// ValidateID checks a model or instance type id: 1 to 128 characters of a-z, 0-9, '.', '_', ':'
// and '-', starting with a letter or digit. Ids appear in REST paths, so no '/'.
func ValidateID(id string) error {
	if id == "" || len(id) > maxIDLen {
		return fmt.Errorf("%w: id must have 1 to %d characters", ErrInvalidPrice, maxIDLen)
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case i > 0 && (c == '.' || c == '_' || c == ':' || c == '-'):
		default:
			return fmt.Errorf("%w: id %s may hold only a-z, 0-9, '.', '_', ':' and '-' and must start with a letter or digit", ErrInvalidPrice, textcheck.Quote(id))
		}
	}
	return nil
}

// ValidateUnit checks a dimension unit: 1 to 64 characters of a-z, 0-9 and '_', starting with a letter.
func ValidateUnit(unit string) error {
	if unit == "" || len(unit) > maxUnitLen {
		return fmt.Errorf("%w: unit must have 1 to %d characters", ErrInvalidPrice, maxUnitLen)
	}
	for i := 0; i < len(unit); i++ {
		c := unit[i]
		if lower, tail := c >= 'a' && c <= 'z', c >= '0' && c <= '9' || c == '_'; !lower && (i == 0 || !tail) {
			return fmt.Errorf("%w: unit %s may hold only a-z, 0-9 and '_' and must start with a letter", ErrInvalidPrice, textcheck.Quote(unit))
		}
	}
	return nil
}

func validateCommon(currency string, effectiveFrom time.Time) error {
	if currency == "" {
		return fmt.Errorf("%w: a currency code is required", ErrInvalidPrice)
	}
	if !money.IsKnownCurrency(currency) {
		return fmt.Errorf("%w: unknown currency %s", ErrInvalidPrice, textcheck.Quote(currency))
	}
	if effectiveFrom.IsZero() {
		return fmt.Errorf("%w: effective_from is required", ErrInvalidPrice)
	}
	return nil
}

func validateName(field, s string, required bool) error {
	if required && strings.TrimSpace(s) == "" {
		return fmt.Errorf("%w: %s is required", ErrInvalidPrice, field)
	}
	if err := textcheck.FreeText(field, s, maxNameLen); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidPrice, err)
	}
	return nil
}

// Validate checks everything but ID and CatalogVersion, which the pricing service assigns: a
// valid model id, display name and modality, a known currency, an effective time, and 1 to 32
// dimensions with distinct valid units, a price >= 0 and 1 <= per <= 1e12.
func (v ModelVersion) Validate() error {
	if err := ValidateID(v.ModelID); err != nil {
		return fmt.Errorf("model_id: %w", err)
	}
	if err := validateName("display_name", v.DisplayName, true); err != nil {
		return err
	}
	if !v.Modality.Valid() {
		return fmt.Errorf("%w: unknown modality %s", ErrInvalidPrice, textcheck.Quote(string(v.Modality)))
	}
	if len(v.Dimensions) == 0 || len(v.Dimensions) > maxDimensions {
		return fmt.Errorf("%w: a model needs 1 to %d dimensions", ErrInvalidPrice, maxDimensions)
	}
	if err := validateCommon(v.Currency, v.EffectiveFrom); err != nil {
		return err
	}
	for i, d := range v.Dimensions {
		if err := ValidateUnit(d.Unit); err != nil {
			return err
		}
		if slices.ContainsFunc(v.Dimensions[:i], func(o Dimension) bool { return o.Unit == d.Unit }) {
			return fmt.Errorf("%w: unit %s appears twice", ErrInvalidPrice, textcheck.Quote(d.Unit))
		}
		if d.Price < 0 {
			return fmt.Errorf("%w: price of %s must not be negative", ErrInvalidPrice, d.Unit)
		}
		if d.Per <= 0 || d.Per > maxPer {
			return fmt.Errorf("%w: per of %s must be between 1 and %d", ErrInvalidPrice, d.Unit, int64(maxPer))
		}
	}
	return nil
}

// Validate checks everything but ID and CatalogVersion: a valid instance type id, a description,
// a known currency, an effective time, a non-negative hourly price and plausible hardware counts.
func (v InstanceVersion) Validate() error {
	if err := ValidateID(v.InstanceTypeID); err != nil {
		return fmt.Errorf("instance_type_id: %w", err)
	}
	if err := validateName("description", v.Description, true); err != nil {
		return err
	}
	if err := validateName("gpu", v.GPU, false); err != nil {
		return err
	}
	if err := validateCommon(v.Currency, v.EffectiveFrom); err != nil {
		return err
	}
	if v.HourlyPrice < 0 {
		return fmt.Errorf("%w: hourly price must not be negative", ErrInvalidPrice)
	}
	if v.GPUCount < 0 || v.GPUCount > 64 || (v.GPUCount > 0) != (v.GPU != "") {
		return fmt.Errorf("%w: gpu_count must be 0 to 64, and positive exactly when gpu is set", ErrInvalidPrice)
	}
	if v.VCPU <= 0 || v.VCPU > maxInstanceCPU || v.MemoryGiB <= 0 || v.MemoryGiB > 1<<20 {
		return fmt.Errorf("%w: vcpu and memory_gib must be positive", ErrInvalidPrice)
	}
	return nil
}

// Catalog is every price version of every model and instance type at one catalog version.
// It is immutable; build it with New or FromProto.
type Catalog struct {
	version   int64
	models    map[string][]ModelVersion    // by model id, sorted by (EffectiveFrom, CatalogVersion)
	instances map[string][]InstanceVersion // by instance type id, sorted the same way
	modelIDs  []string                     // sorted
	typeIDs   []string                     // sorted
}

// New builds a Catalog at catalog version `version` from every version of every model and
// instance type, in any order. Each version must pass Validate and have a unique non-empty ID.
// The slices are copied.
func New(version int64, models []ModelVersion, instances []InstanceVersion) (*Catalog, error) {
	if version < 0 {
		return nil, fmt.Errorf("%w: negative catalog version %d", ErrInvalidPrice, version)
	}
	c := &Catalog{
		version:   version,
		models:    make(map[string][]ModelVersion),
		instances: make(map[string][]InstanceVersion),
	}
	ids := make(map[string]bool, len(models)+len(instances))
	for _, m := range models {
		if err := m.Validate(); err != nil {
			return nil, fmt.Errorf("model version %s: %w", m.ID, err)
		}
		if m.ID == "" || ids[m.ID] {
			return nil, fmt.Errorf("%w: missing or duplicate version id %q", ErrInvalidPrice, m.ID)
		}
		ids[m.ID] = true
		m.Dimensions = slices.Clone(m.Dimensions)
		c.models[m.ModelID] = append(c.models[m.ModelID], m)
	}
	for _, in := range instances {
		if err := in.Validate(); err != nil {
			return nil, fmt.Errorf("instance version %s: %w", in.ID, err)
		}
		if in.ID == "" || ids[in.ID] {
			return nil, fmt.Errorf("%w: missing or duplicate version id %q", ErrInvalidPrice, in.ID)
		}
		ids[in.ID] = true
		c.instances[in.InstanceTypeID] = append(c.instances[in.InstanceTypeID], in)
	}
	for id, vs := range c.models {
		slices.SortFunc(vs, func(a, b ModelVersion) int {
			return compareVersions(a.EffectiveFrom, a.CatalogVersion, b.EffectiveFrom, b.CatalogVersion)
		})
		c.modelIDs = append(c.modelIDs, id)
	}
	for id, vs := range c.instances {
		slices.SortFunc(vs, func(a, b InstanceVersion) int {
			return compareVersions(a.EffectiveFrom, a.CatalogVersion, b.EffectiveFrom, b.CatalogVersion)
		})
		c.typeIDs = append(c.typeIDs, id)
	}
	slices.Sort(c.modelIDs)
	slices.Sort(c.typeIDs)
	return c, nil
}

func compareVersions(ta time.Time, ca int64, tb time.Time, cb int64) int {
	if n := ta.Compare(tb); n != 0 {
		return n
	}
	switch {
	case ca < cb:
		return -1
	case ca > cb:
		return 1
	}
	return 0
}

// Version returns the catalog version: it grows with every price change, so a larger version
// is a newer catalog.
func (c *Catalog) Version() int64 { return c.version }

// inForce returns the index in vs (sorted by effective time) of the version in force at `at`,
// or -1. Histories are short, so a backward scan beats a binary search.
func inForce[V any](vs []V, effective func(*V) time.Time, at time.Time) int {
	for i := len(vs) - 1; i >= 0; i-- {
		if !effective(&vs[i]).After(at) {
			return i
		}
	}
	return -1
}

// scheduled returns the versions of vs effective after `at`, leaving out those replaced by a
// later change with the same effective time.
func scheduled[V any](vs []V, effective func(*V) time.Time, at time.Time) []V {
	var out []V
	for i := range vs {
		e := effective(&vs[i])
		if !e.After(at) {
			continue
		}
		if i+1 < len(vs) && effective(&vs[i+1]).Equal(e) {
			continue // replaced before taking effect
		}
		out = append(out, vs[i])
	}
	return out
}

func modelEffective(v *ModelVersion) time.Time       { return v.EffectiveFrom }
func instanceEffective(v *InstanceVersion) time.Time { return v.EffectiveFrom }

// Model returns the version of modelID in force at `at`: ErrUnknownModel when the model has no
// version at all, ErrNoPriceInForce when its first version takes effect after `at`.
func (c *Catalog) Model(modelID string, at time.Time) (ModelVersion, error) {
	vs, ok := c.models[modelID]
	if !ok {
		return ModelVersion{}, fmt.Errorf("%w %s", ErrUnknownModel, textcheck.Quote(modelID))
	}
	i := inForce(vs, modelEffective, at)
	if i < 0 {
		return ModelVersion{}, fmt.Errorf("%w for model %s at %s (first price from %s)", ErrNoPriceInForce, textcheck.Quote(modelID),
			at.UTC().Format(time.RFC3339Nano), vs[0].EffectiveFrom.UTC().Format(time.RFC3339))
	}
	return vs[i], nil
}

// ScheduledModel returns the versions of modelID taking effect after `at`, by effective time.
func (c *Catalog) ScheduledModel(modelID string, at time.Time) []ModelVersion {
	return scheduled(c.models[modelID], modelEffective, at)
}

// ModelsAt returns the version in force at `at` of every model that has one, by model id, and
// every version scheduled after `at`, by effective time then model id.
func (c *Catalog) ModelsAt(at time.Time) (current, upcoming []ModelVersion) {
	for _, id := range c.modelIDs {
		vs := c.models[id]
		if i := inForce(vs, modelEffective, at); i >= 0 {
			current = append(current, vs[i])
		}
		upcoming = append(upcoming, scheduled(vs, modelEffective, at)...)
	}
	slices.SortStableFunc(upcoming, func(a, b ModelVersion) int { return a.EffectiveFrom.Compare(b.EffectiveFrom) })
	return current, upcoming
}

// ModelVersions returns every version of every model, by model id then effective time.
func (c *Catalog) ModelVersions() []ModelVersion {
	var out []ModelVersion
	for _, id := range c.modelIDs {
		out = append(out, c.models[id]...)
	}
	return out
}

// InstancePrice returns the version of instance type typeID in force at `at`:
// ErrUnknownInstanceType when the type has no version at all, ErrNoPriceInForce when its first
// version takes effect after `at`. Check Available before creating an instance.
func (c *Catalog) InstancePrice(typeID string, at time.Time) (InstanceVersion, error) {
	vs, ok := c.instances[typeID]
	if !ok {
		return InstanceVersion{}, fmt.Errorf("%w %s", ErrUnknownInstanceType, textcheck.Quote(typeID))
	}
	i := inForce(vs, instanceEffective, at)
	if i < 0 {
		return InstanceVersion{}, fmt.Errorf("%w for instance type %s at %s", ErrNoPriceInForce, textcheck.Quote(typeID), at.UTC().Format(time.RFC3339Nano))
	}
	return vs[i], nil
}

// InstancesAt returns the version in force at `at` of every instance type that has one, by id,
// and every version scheduled after `at`, by effective time then id.
func (c *Catalog) InstancesAt(at time.Time) (current, upcoming []InstanceVersion) {
	for _, id := range c.typeIDs {
		vs := c.instances[id]
		if i := inForce(vs, instanceEffective, at); i >= 0 {
			current = append(current, vs[i])
		}
		upcoming = append(upcoming, scheduled(vs, instanceEffective, at)...)
	}
	slices.SortStableFunc(upcoming, func(a, b InstanceVersion) int { return a.EffectiveFrom.Compare(b.EffectiveFrom) })
	return current, upcoming
}

// InstanceVersions returns every version of every instance type, by id then effective time.
func (c *Catalog) InstanceVersions() []InstanceVersion {
	var out []InstanceVersion
	for _, id := range c.typeIDs {
		out = append(out, c.instances[id]...)
	}
	return out
}
