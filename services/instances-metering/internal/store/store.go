// Package store keeps rentals, their charged periods, the event outbox and the suspension notices
// in PostgreSQL (schema "instances"). No transaction is ever open across a call to another
// service: work is claimed (a lease on the rows, committed), the call is made, and its outcome is
// recorded in a new short transaction fenced by the claim's token (claims.go).
package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tallyhq/tally/pkg/money"
	"github.com/tallyhq/tally/pkg/textcheck"
	"github.com/tallyhq/tally/services/instances-metering/internal/rental"
)

// Store is the PostgreSQL store of the service.
type Store struct {
	pool *pgxpool.Pool
}

// New returns a Store over pool, whose search_path is the service's schema.
func New(pool *pgxpool.Pool) (*Store, error) {
	if pool == nil {
		return nil, errors.New("store: pool is required")
	}
	return &Store{pool: pool}, nil
}

const rentalColumns = `id, instance_id, org_id, instance_type, price_version_id, hourly_price, currency, period_ns,
period_price, idempotency_key, state, started_at, stopped_at, suspended_at, periods_charged, total_charged`

// visible excludes rentals still starting: until its first period is recorded, a rental does not
// exist for the API.
const visible = `state <> 'starting'`

// scanRental reads the rentalColumns of row, then into extra the columns that follow them.
func scanRental(row pgx.Row, extra ...any) (rental.Rental, error) {
	var (
		r                    rental.Rental
		hourly, price, total int64
		period               int64
		state                string
		stopped, suspended   *time.Time
	)
	err := row.Scan(append([]any{&r.ID, &r.InstanceID, &r.OrgID, &r.InstanceType, &r.PriceVersionID, &hourly, &r.Currency, &period,
		&price, &r.IdempotencyKey, &state, &r.StartedAt, &stopped, &suspended, &r.PeriodsCharged, &total}, extra...)...)
	if err != nil {
		return rental.Rental{}, err
	}
	r.HourlyPrice, r.PeriodPrice, r.TotalCharged = money.Nanos(hourly), money.Nanos(price), money.Nanos(total)
	r.Period, r.State = time.Duration(period), rental.State(state)
	r.StartedAt = r.StartedAt.UTC()
	if stopped != nil {
		r.StoppedAt = stopped.UTC()
	}
	if suspended != nil {
		r.SuspendedAt = suspended.UTC()
	}
	return r, nil
}

func collectRentals(rows pgx.Rows) ([]rental.Rental, error) {
	defer rows.Close()
	var out []rental.Rental
	for rows.Next() {
		r, err := scanRental(rows)
		if err != nil {
			return nil, fmt.Errorf("reading rental: %w", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading rentals: %w", err)
	}
	return out, nil
}

// Get returns the rental of an instance, or rental.ErrNotFound (also while it is starting).
func (s *Store) Get(ctx context.Context, instanceID string) (rental.Rental, error) {
	return s.get(ctx, `SELECT `+rentalColumns+` FROM rentals WHERE instance_id = $1 AND `+visible, instanceID)
}

// Lookup returns the rental of an instance in any state, starting included, or
// rental.ErrNotFound.
func (s *Store) Lookup(ctx context.Context, instanceID string) (rental.Rental, error) {
	return s.get(ctx, `SELECT `+rentalColumns+` FROM rentals WHERE instance_id = $1`, instanceID)
}

func (s *Store) get(ctx context.Context, query, instanceID string) (rental.Rental, error) {
	r, err := scanRental(s.pool.QueryRow(ctx, query, instanceID))
	if errors.Is(err, pgx.ErrNoRows) {
		return rental.Rental{}, fmt.Errorf("%w: instance %s", rental.ErrNotFound, textcheck.Quote(instanceID))
	}
	if err != nil {
		return rental.Rental{}, fmt.Errorf("reading rental %q: %w", instanceID, err)
	}
	return r, nil
}

// List returns up to limit rentals of an organization, newest first, with ids below beforeID
// when beforeID > 0.
func (s *Store) List(ctx context.Context, orgID string, limit int, beforeID int64) ([]rental.Rental, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+rentalColumns+` FROM rentals
WHERE org_id = $1 AND ($2::bigint = 0 OR id < $2::bigint) AND `+visible+` ORDER BY id DESC LIMIT $3`, orgID, beforeID, limit)
	if err != nil {
		return nil, fmt.Errorf("listing rentals: %w", err)
	}
	return collectRentals(rows)
}

// NextDue returns the earliest time a rental can be claimed to charge a period (its next
// boundary, or the end of the claim or retry pause holding it), or false when none has a period
// to charge.
func (s *Store) NextDue(ctx context.Context) (time.Time, bool, error) {
	var t *time.Time
	if err := s.pool.QueryRow(ctx, `SELECT min(greatest(next_charge_at, coalesce(claim_expires_at, next_charge_at)))
FROM rentals WHERE next_charge_at IS NOT NULL`).Scan(&t); err != nil {
		return time.Time{}, false, fmt.Errorf("reading next due period: %w", err)
	}
	if t == nil {
		return time.Time{}, false, nil
	}
	return *t, true, nil
}

func nullableTime(t time.Time) pgtype.Timestamptz {
	return pgtype.Timestamptz{Time: t, Valid: !t.IsZero()}
}

// insertEvents queues events for the sequencer (see SequenceEvents).
func insertEvents(ctx context.Context, tx pgx.Tx, events []rental.Event) error {
	if len(events) == 0 {
		return nil
	}
	var (
		periods, amounts                             []int64
		kinds, insts, orgs, types, currencies, txIDs []string
		times                                        []time.Time
	)
	for _, e := range events {
		kinds, insts, orgs = append(kinds, string(e.Kind)), append(insts, e.InstanceID), append(orgs, e.OrgID)
		types, periods, amounts = append(types, e.InstanceType), append(periods, e.Period), append(amounts, int64(e.Amount))
		currencies, txIDs, times = append(currencies, e.Currency), append(txIDs, e.TransactionID), append(times, e.OccurredAt)
	}
	// WITH ORDINALITY keeps the events of one transaction in their order of ids.
	if _, err := tx.Exec(ctx, `INSERT INTO pending_events (kind, instance_id, org_id, instance_type, period, amount, currency, transaction_id, occurred_at)
SELECT k, i, o, t, p, a, c, x, w FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[], $6::bigint[], $7::text[], $8::text[], $9::timestamptz[])
WITH ORDINALITY AS u(k, i, o, t, p, a, c, x, w, n) ORDER BY n`,
		kinds, insts, orgs, types, periods, amounts, currencies, txIDs, times); err != nil {
		return fmt.Errorf("queueing events: %w", err)
	}
	return nil
}

// SequenceEvents moves up to limit committed pending events, in id order, into the event stream
// with the next sequence numbers. Only one transaction sequences at a time (an advisory lock); it
// returns 0 when another one is at it.
func (s *Store) SequenceEvents(ctx context.Context, limit int) (int, error) {
	tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{})
	if err != nil {
		return 0, fmt.Errorf("beginning event sequencing: %w", err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	var locked bool
	if err := tx.QueryRow(ctx, `SELECT pg_try_advisory_xact_lock(hashtext('tally.instances.event_sequencer'))`).Scan(&locked); err != nil {
		return 0, fmt.Errorf("locking the event sequencer: %w", err)
	}
	if !locked {
		return 0, nil
	}
	var ids []int64
	rows, err := tx.Query(ctx, `SELECT id FROM pending_events ORDER BY id LIMIT $1`, limit)
	if err != nil {
		return 0, fmt.Errorf("reading pending events: %w", err)
	}
	if ids, err = pgx.CollectRows(rows, pgx.RowTo[int64]); err != nil {
		return 0, fmt.Errorf("reading pending events: %w", err)
	}
	if len(ids) == 0 {
		return 0, nil
	}
	var last int64
	if err := tx.QueryRow(ctx, `UPDATE event_sequence SET last = last + $1 WHERE id = 1 RETURNING last`, len(ids)).Scan(&last); err != nil {
		return 0, fmt.Errorf("allocating event sequence: %w", err)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO events (seq, kind, instance_id, org_id, instance_type, period, amount, currency, transaction_id, occurred_at)
SELECT $2 + row_number() OVER (ORDER BY id), kind, instance_id, org_id, instance_type, period, amount, currency, transaction_id, occurred_at
FROM pending_events WHERE id = ANY($1)`, ids, last-int64(len(ids))); err != nil {
		return 0, fmt.Errorf("sequencing events: %w", err)
	}
	if _, err := tx.Exec(ctx, `DELETE FROM pending_events WHERE id = ANY($1)`, ids); err != nil {
		return 0, fmt.Errorf("deleting sequenced events: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, fmt.Errorf("committing event sequencing: %w", err)
	}
	return len(ids), nil
}

// Events returns up to limit events after sequence after, in sequence order.
func (s *Store) Events(ctx context.Context, after int64, limit int) ([]rental.Event, error) {
	rows, err := s.pool.Query(ctx, `SELECT seq, kind, instance_id, org_id, instance_type, period, amount, currency, transaction_id, occurred_at
FROM events WHERE seq > $1 ORDER BY seq LIMIT $2`, after, limit)
	if err != nil {
		return nil, fmt.Errorf("reading events: %w", err)
	}
	defer rows.Close()
	var out []rental.Event
	for rows.Next() {
		var e rental.Event
		var kind string
		var amount int64
		if err := rows.Scan(&e.Seq, &kind, &e.InstanceID, &e.OrgID, &e.InstanceType, &e.Period, &amount, &e.Currency, &e.TransactionID, &e.OccurredAt); err != nil {
			return nil, fmt.Errorf("reading event: %w", err)
		}
		e.Kind, e.Amount, e.OccurredAt = rental.EventKind(kind), money.Nanos(amount), e.OccurredAt.UTC()
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading events: %w", err)
	}
	return out, nil
}

// Notice is a suspension notice waiting for delivery.
type Notice struct {
	InstanceID string
	OrgID      string
	Reason     string
	Attempts   int
}

// DeliverNotices claims up to limit undelivered notices due at now, calls send for each and
// records the result: delivered, or retried after retryAfter(attempts). Claim → commit → call →
// record: the claim pushes the notices' next attempt to the end of lease and commits before any
// call, so no transaction is open while the notifications service answers, and a replica that
// dies mid-delivery leaves its notices to be claimed again once the lease ends (the notifications
// service deduplicates by idempotency key, so a notice sent twice is one email).
func (s *Store) DeliverNotices(ctx context.Context, now time.Time, limit int, lease time.Duration, send func(context.Context, Notice) error,
	retryAfter func(attempts int) time.Duration) (delivered int, err error) {
	rows, err := s.pool.Query(ctx, `UPDATE suspension_notices n SET attempts = n.attempts + 1, next_attempt_at = $3
FROM (SELECT instance_id FROM suspension_notices WHERE sent_at IS NULL AND next_attempt_at <= $1
      ORDER BY next_attempt_at LIMIT $2 FOR UPDATE SKIP LOCKED) due
WHERE n.instance_id = due.instance_id RETURNING n.instance_id, n.org_id, n.reason, n.attempts`, now, limit, now.Add(lease))
	if err != nil {
		return 0, fmt.Errorf("claiming notices: %w", err)
	}
	notices, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Notice, error) {
		var n Notice
		err := row.Scan(&n.InstanceID, &n.OrgID, &n.Reason, &n.Attempts)
		n.Attempts-- // the attempts made before this one
		return n, err
	})
	if err != nil {
		return 0, fmt.Errorf("claiming notices: %w", err)
	}
	var errs []error
	for _, n := range notices {
		serr := send(ctx, n)
		// Recorded even when ctx ended during the call: the notice may have been delivered.
		wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), recordTimeout)
		if serr != nil {
			errs = append(errs, fmt.Errorf("notice of %s: %w", n.InstanceID, serr))
			_, err = s.pool.Exec(wctx, `UPDATE suspension_notices SET next_attempt_at = $2 WHERE instance_id = $1 AND sent_at IS NULL`,
				n.InstanceID, now.Add(retryAfter(n.Attempts+1)))
		} else {
			delivered++
			_, err = s.pool.Exec(wctx, `UPDATE suspension_notices SET sent_at = $2 WHERE instance_id = $1 AND sent_at IS NULL`, n.InstanceID, now)
		}
		cancel()
		if err != nil {
			return delivered, fmt.Errorf("recording notice delivery: %w", err)
		}
	}
	return delivered, errors.Join(errs...)
}

// RentalsByState counts the rentals in each state (a state with none is absent).
func (s *Store) RentalsByState(ctx context.Context) (map[rental.State]int64, error) {
	rows, err := s.pool.Query(ctx, `SELECT state, count(*) FROM rentals GROUP BY state`)
	if err != nil {
		return nil, fmt.Errorf("counting rentals by state: %w", err)
	}
	defer rows.Close()
	out := map[rental.State]int64{}
	for rows.Next() {
		var state string
		var n int64
		if err := rows.Scan(&state, &n); err != nil {
			return nil, fmt.Errorf("counting rentals by state: %w", err)
		}
		out[rental.State(state)] = n
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("counting rentals by state: %w", err)
	}
	return out, nil
}
