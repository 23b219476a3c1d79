// Package store persists the price catalog in PostgreSQL (schema pricing): immutable price
// versions, the catalog version counter and the audit trail of changes.
//
// Every change runs in one transaction that first bumps the single catalog_state row. That row
// lock serializes writers, so catalog versions commit in order, and a reader that sees version N
// also sees every change up to N.
package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tallyhq/tally/pkg/catalog"
	"github.com/tallyhq/tally/pkg/textcheck"
	"github.com/tallyhq/tally/services/pricing/internal/pricing"
)

// Store is the PostgreSQL price catalog.
type Store struct {
	pool *pgxpool.Pool
	now  func() time.Time
}

// New returns a Store over pool, whose search_path is the pricing schema. now is the clock
// (time.Now when nil).
func New(pool *pgxpool.Pool, now func() time.Time) (*Store, error) {
	if pool == nil {
		return nil, errors.New("store: pool is required")
	}
	if now == nil {
		now = time.Now
	}
	return &Store{pool: pool, now: now}, nil
}

func newID() string { return uuid.Must(uuid.NewV7()).String() }

// Version returns the current catalog version, 0 for an empty catalog.
func (s *Store) Version(ctx context.Context) (int64, error) {
	var v int64
	if err := s.pool.QueryRow(ctx, "SELECT version FROM catalog_state").Scan(&v); err != nil {
		return 0, fmt.Errorf("reading catalog version: %w", err)
	}
	return v, nil
}

// Load reads the whole catalog in one repeatable-read snapshot.
func (s *Store) Load(ctx context.Context) (*catalog.Catalog, error) {
	tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, fmt.Errorf("beginning catalog read: %w", err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()

	var version int64
	if err := tx.QueryRow(ctx, "SELECT version FROM catalog_state").Scan(&version); err != nil {
		return nil, fmt.Errorf("reading catalog version: %w", err)
	}
	models, err := loadModels(ctx, tx)
	if err != nil {
		return nil, err
	}
	instances, err := loadInstances(ctx, tx)
	if err != nil {
		return nil, err
	}
	c, err := catalog.New(version, models, instances)
	if err != nil {
		return nil, fmt.Errorf("building catalog %d: %w", version, err)
	}
	return c, nil
}

const modelColumns = `v.id::text, v.model_id, v.display_name, v.modality, v.currency, v.effective_from,
	v.catalog_version, v.created_at`

func scanModel(row pgx.Row) (catalog.ModelVersion, error) {
	var m catalog.ModelVersion
	var modality string
	err := row.Scan(&m.ID, &m.ModelID, &m.DisplayName, &modality, &m.Currency, &m.EffectiveFrom,
		&m.CatalogVersion, &m.CreatedAt)
	m.Modality = catalog.Modality(modality)
	return m, err
}

func loadModels(ctx context.Context, tx pgx.Tx) ([]catalog.ModelVersion, error) {
	rows, err := tx.Query(ctx, "SELECT "+modelColumns+" FROM model_price_versions v ORDER BY v.model_id, v.effective_from, v.catalog_version")
	if err != nil {
		return nil, fmt.Errorf("reading model prices: %w", err)
	}
	models, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (catalog.ModelVersion, error) { return scanModel(r) })
	if err != nil {
		return nil, fmt.Errorf("reading model prices: %w", err)
	}
	index := make(map[string]int, len(models))
	for i, m := range models {
		index[m.ID] = i
	}
	rows, err = tx.Query(ctx, "SELECT version_id::text, unit, price_nanos, per FROM model_price_dimensions ORDER BY version_id, position")
	if err != nil {
		return nil, fmt.Errorf("reading price dimensions: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		var d catalog.Dimension
		if err := rows.Scan(&id, &d.Unit, &d.Price, &d.Per); err != nil {
			return nil, fmt.Errorf("reading price dimensions: %w", err)
		}
		i, ok := index[id]
		if !ok {
			return nil, fmt.Errorf("price dimension of unknown version %s", id)
		}
		models[i].Dimensions = append(models[i].Dimensions, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading price dimensions: %w", err)
	}
	return models, nil
}

const instanceColumns = `id::text, instance_type_id, description, gpu, gpu_count, vcpu, memory_gib,
	hourly_price_nanos, currency, available, effective_from, catalog_version, created_at`

func scanInstance(row pgx.Row) (catalog.InstanceVersion, error) {
	var v catalog.InstanceVersion
	err := row.Scan(&v.ID, &v.InstanceTypeID, &v.Description, &v.GPU, &v.GPUCount, &v.VCPU, &v.MemoryGiB,
		&v.HourlyPrice, &v.Currency, &v.Available, &v.EffectiveFrom, &v.CatalogVersion, &v.CreatedAt)
	return v, err
}

func loadInstances(ctx context.Context, tx pgx.Tx) ([]catalog.InstanceVersion, error) {
	rows, err := tx.Query(ctx, "SELECT "+instanceColumns+" FROM instance_price_versions ORDER BY instance_type_id, effective_from, catalog_version")
	if err != nil {
		return nil, fmt.Errorf("reading instance prices: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (catalog.InstanceVersion, error) { return scanInstance(r) })
	if err != nil {
		return nil, fmt.Errorf("reading instance prices: %w", err)
	}
	return out, nil
}

// change is what every write shares: the audit row and the idempotency replay.
type change struct {
	kind    string // model, instance, seed
	subject string
	audit   pricing.Audit
	hash    string
}

// inChange runs write in a transaction that bumps the catalog version and records the audit row.
// When the idempotency key was used before, it rolls back and returns the version id the key
// created (replayed=true), or ErrIdempotencyConflict for another request.
func (s *Store) inChange(ctx context.Context, c change, write func(tx pgx.Tx, version int64, now time.Time) (versionID string, err error)) (versionID string, catalogVersion int64, replayed bool, err error) {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return "", 0, false, fmt.Errorf("beginning price change: %w", err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()

	now := s.now().UTC().Truncate(time.Microsecond)
	// The row lock taken here serializes changes, including concurrent retries of one key.
	if err := tx.QueryRow(ctx, "UPDATE catalog_state SET version = version + 1, updated_at = $1 RETURNING version", now).Scan(&catalogVersion); err != nil {
		return "", 0, false, fmt.Errorf("bumping catalog version: %w", err)
	}
	if c.audit.IdempotencyKey != "" {
		var prevID, prevHash string
		var prevVersion int64
		err := tx.QueryRow(ctx, "SELECT coalesce(version_id::text, ''), request_hash, catalog_version FROM price_changes WHERE idempotency_key = $1",
			c.audit.IdempotencyKey).Scan(&prevID, &prevHash, &prevVersion)
		switch {
		case err == nil && prevHash == c.hash:
			return prevID, prevVersion, true, nil // the deferred rollback undoes the bump
		case err == nil:
			return "", 0, false, fmt.Errorf("%w: key %s", pricing.ErrIdempotencyConflict, textcheck.Quote(c.audit.IdempotencyKey))
		case !errors.Is(err, pgx.ErrNoRows):
			return "", 0, false, fmt.Errorf("reading idempotency key: %w", err)
		}
	}
	versionID, err = write(tx, catalogVersion, now)
	if err != nil {
		return "", 0, false, err
	}
	var key *string
	if c.audit.IdempotencyKey != "" {
		key = &c.audit.IdempotencyKey
	}
	var vid *string
	if versionID != "" {
		vid = &versionID
	}
	_, err = tx.Exec(ctx, `INSERT INTO price_changes (id, catalog_version, kind, subject_id, version_id, actor, reason, idempotency_key, request_hash, created_at)
		VALUES ($1, $2, $3, $4, $5::uuid, $6, $7, $8, $9, $10)`,
		newID(), catalogVersion, c.kind, c.subject, vid, c.audit.Actor, c.audit.Reason, key, c.hash, now)
	if err != nil {
		return "", 0, false, fmt.Errorf("recording price change: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return "", 0, false, fmt.Errorf("committing price change: %w", err)
	}
	return versionID, catalogVersion, false, nil
}

// SetModelPrice stores a new model price version and returns it with the catalog version that
// created it. ch must be prepared (pricing.ModelChange.Prepare) and hash be its fingerprint. A
// replayed idempotency key returns the version it created and replayed=true.
func (s *Store) SetModelPrice(ctx context.Context, ch pricing.ModelChange, hash string) (v catalog.ModelVersion, replayed bool, err error) {
	v = ch.Version
	id, _, replayed, err := s.inChange(ctx, change{kind: "model", subject: v.ModelID, audit: ch.Audit, hash: hash},
		func(tx pgx.Tx, version int64, now time.Time) (string, error) {
			v.ID, v.CatalogVersion, v.CreatedAt = newID(), version, now
			v.EffectiveFrom = v.EffectiveFrom.UTC().Truncate(time.Microsecond)
			return v.ID, insertModel(ctx, tx, v)
		})
	if err != nil || !replayed {
		return v, replayed, err
	}
	v, err = s.modelVersion(ctx, id)
	return v, true, err
}

// SetInstancePrice stores a new instance price version, like SetModelPrice.
func (s *Store) SetInstancePrice(ctx context.Context, ch pricing.InstanceChange, hash string) (v catalog.InstanceVersion, replayed bool, err error) {
	v = ch.Version
	id, _, replayed, err := s.inChange(ctx, change{kind: "instance", subject: v.InstanceTypeID, audit: ch.Audit, hash: hash},
		func(tx pgx.Tx, version int64, now time.Time) (string, error) {
			v.ID, v.CatalogVersion, v.CreatedAt = newID(), version, now
			v.EffectiveFrom = v.EffectiveFrom.UTC().Truncate(time.Microsecond)
			return v.ID, insertInstance(ctx, tx, v)
		})
	if err != nil || !replayed {
		return v, replayed, err
	}
	v, err = scanInstance(s.pool.QueryRow(ctx, "SELECT "+instanceColumns+" FROM instance_price_versions WHERE id = $1", id))
	if err != nil {
		return catalog.InstanceVersion{}, false, fmt.Errorf("reading instance price version %s: %w", id, err)
	}
	return v, true, nil
}

// modelVersion reads one model price version with its dimensions.
func (s *Store) modelVersion(ctx context.Context, id string) (catalog.ModelVersion, error) {
	v, err := scanModel(s.pool.QueryRow(ctx, "SELECT "+modelColumns+" FROM model_price_versions v WHERE v.id = $1", id))
	if err != nil {
		return catalog.ModelVersion{}, fmt.Errorf("reading model price version %s: %w", id, err)
	}
	rows, err := s.pool.Query(ctx, "SELECT unit, price_nanos, per FROM model_price_dimensions WHERE version_id = $1 ORDER BY position", id)
	if err != nil {
		return catalog.ModelVersion{}, fmt.Errorf("reading dimensions of %s: %w", id, err)
	}
	v.Dimensions, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (catalog.Dimension, error) {
		var d catalog.Dimension
		err := r.Scan(&d.Unit, &d.Price, &d.Per)
		return d, err
	})
	if err != nil {
		return catalog.ModelVersion{}, fmt.Errorf("reading dimensions of %s: %w", id, err)
	}
	return v, nil
}

// Seed loads seed as catalog version 1 when the catalog has never been changed, and reports
// whether it did. Replicas starting together load it once: the version row lock orders them, and
// every one but the first bumps to a version above 1 and rolls back.
func (s *Store) Seed(ctx context.Context, seed pricing.Seed, source string) (bool, error) {
	_, _, _, err := s.inChange(ctx, change{kind: "seed", subject: source, audit: pricing.Audit{Actor: "seed", Reason: "initial catalog from " + source}},
		func(tx pgx.Tx, version int64, now time.Time) (string, error) {
			if version != 1 {
				return "", errSeeded
			}
			for _, m := range seed.Models {
				m.ID, m.CatalogVersion, m.CreatedAt = newID(), version, now
				if err := insertModel(ctx, tx, m); err != nil {
					return "", err
				}
			}
			for _, in := range seed.Instances {
				in.ID, in.CatalogVersion, in.CreatedAt = newID(), version, now
				if err := insertInstance(ctx, tx, in); err != nil {
					return "", err
				}
			}
			return "", nil
		})
	if errors.Is(err, errSeeded) {
		return false, nil
	}
	return err == nil, err
}

// errSeeded aborts a seed that lost the race to another replica.
var errSeeded = errors.New("catalog already seeded")

// insertModel writes v. Its times must already be truncated to PostgreSQL's microseconds.
func insertModel(ctx context.Context, tx pgx.Tx, v catalog.ModelVersion) error {
	_, err := tx.Exec(ctx, `INSERT INTO model_price_versions (id, model_id, display_name, modality, currency, effective_from, catalog_version, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
		v.ID, v.ModelID, v.DisplayName, string(v.Modality), v.Currency, v.EffectiveFrom, v.CatalogVersion, v.CreatedAt)
	if err != nil {
		return fmt.Errorf("inserting price of model %s: %w", v.ModelID, err)
	}
	rows := make([][]any, len(v.Dimensions))
	for i, d := range v.Dimensions {
		rows[i] = []any{v.ID, i, d.Unit, int64(d.Price), d.Per}
	}
	_, err = tx.CopyFrom(ctx, pgx.Identifier{"model_price_dimensions"}, []string{"version_id", "position", "unit", "price_nanos", "per"}, pgx.CopyFromRows(rows))
	if err != nil {
		return fmt.Errorf("inserting price dimensions of model %s: %w", v.ModelID, err)
	}
	return nil
}

// insertInstance writes v. Its times must already be truncated to PostgreSQL's microseconds.
func insertInstance(ctx context.Context, tx pgx.Tx, v catalog.InstanceVersion) error {
	_, err := tx.Exec(ctx, `INSERT INTO instance_price_versions (id, instance_type_id, description, gpu, gpu_count, vcpu, memory_gib,
		hourly_price_nanos, currency, available, effective_from, catalog_version, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)`,
		v.ID, v.InstanceTypeID, v.Description, v.GPU, v.GPUCount, v.VCPU, v.MemoryGiB,
		int64(v.HourlyPrice), v.Currency, v.Available, v.EffectiveFrom, v.CatalogVersion, v.CreatedAt)
	if err != nil {
		return fmt.Errorf("inserting price of instance type %s: %w", v.InstanceTypeID, err)
	}
	return nil
}
