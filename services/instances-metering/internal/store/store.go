// Package store keeps rentals, their charged periods, the event outbox and the suspension notices
// in PostgreSQL (schema "instances"). Every change of a rental happens in a transaction that holds
// the rental's row lock while its periods are charged through the ledger, so two replicas never
// charge the same rental at once.
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

func scanRental(row pgx.Row) (rental.Rental, error) {
	var (
		r                    rental.Rental
		hourly, price, total int64
		period               int64
		state                string
		stopped, suspended   *time.Time
	)
	err := row.Scan(&r.ID, &r.InstanceID, &r.OrgID, &r.InstanceType, &r.PriceVersionID, &hourly, &r.Currency, &period,
		&price, &r.IdempotencyKey, &state, &r.StartedAt, &stopped, &suspended, &r.PeriodsCharged, &total)
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

// Get returns the rental of an instance, or rental.ErrNotFound.
func (s *Store) Get(ctx context.Context, instanceID string) (rental.Rental, error) {
	r, err := scanRental(s.pool.QueryRow(ctx, `SELECT `+rentalColumns+` FROM rentals WHERE instance_id = $1`, instanceID))
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
WHERE org_id = $1 AND ($2 = 0 OR id < $2) ORDER BY id DESC LIMIT $3`, orgID, beforeID, limit)
	if err != nil {
		return nil, fmt.Errorf("listing rentals: %w", err)
	}
	return collectRentals(rows)
}

// NextDue returns the earliest time a rental has a period to charge, or false when none has.
func (s *Store) NextDue(ctx context.Context) (time.Time, bool, error) {
	var t *time.Time
	if err := s.pool.QueryRow(ctx, `SELECT min(next_charge_at) FROM rentals WHERE next_charge_at IS NOT NULL`).Scan(&t); err != nil {
		return time.Time{}, false, fmt.Errorf("reading next due period: %w", err)
	}
	if t == nil {
		return time.Time{}, false, nil
	}
	return *t, true, nil
}

// StartFunc charges the first period of a rental just inserted, with its row locked. An error
// (including rental.ErrInsufficientCredits) rolls the rental back.
type StartFunc func(ctx context.Context, r rental.Rental) (rental.Outcome, error)

// ChargeFunc charges the due periods of a locked rental. It handles its own errors: the outcome
// (possibly partial) is applied whatever happened.
type ChargeFunc func(ctx context.Context, r rental.Rental) rental.Outcome

// BatchChargeFunc charges the due periods of locked rentals, returning one outcome per rental.
type BatchChargeFunc func(ctx context.Context, rs []rental.Rental) []rental.Outcome

// Start inserts r (a running rental with nothing charged) and charges its first period with
// charge in the same transaction, so that a refused or failed first charge leaves no rental.
// When the instance already has a rental, Start returns it with inserted false and charges
// nothing.
func (s *Store) Start(ctx context.Context, r rental.Rental, now time.Time, charge StartFunc) (_ rental.Rental, inserted bool, err error) {
	tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{})
	if err != nil {
		return rental.Rental{}, false, fmt.Errorf("beginning start: %w", err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	// A concurrent start of the same instance waits here on the unique index until the first
	// commits (then DO NOTHING) or rolls back (then this insert proceeds).
	err = tx.QueryRow(ctx, `INSERT INTO rentals (instance_id, org_id, instance_type, price_version_id, hourly_price, currency,
period_ns, period_price, idempotency_key, state, started_at, next_charge_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11)
ON CONFLICT (instance_id) DO NOTHING RETURNING id`,
		r.InstanceID, r.OrgID, r.InstanceType, r.PriceVersionID, int64(r.HourlyPrice), r.Currency,
		int64(r.Period), int64(r.PeriodPrice), r.IdempotencyKey, string(r.State), r.StartedAt).Scan(&r.ID)
	if errors.Is(err, pgx.ErrNoRows) {
		_ = tx.Rollback(ctx)
		existing, err := s.Get(ctx, r.InstanceID)
		return existing, false, err
	}
	if err != nil {
		return rental.Rental{}, false, fmt.Errorf("inserting rental: %w", err)
	}
	out, err := charge(ctx, r)
	if err != nil {
		return rental.Rental{}, false, err
	}
	if out.Suspended {
		return rental.Rental{}, false, fmt.Errorf("%w: first period of instance %s", rental.ErrInsufficientCredits, textcheck.Quote(r.InstanceID))
	}
	after := r.Apply(out, now)
	events := append([]rental.Event{r.Event(rental.EventStarted, now)}, r.Events(out, now)...)
	if err := write(ctx, tx, now, []change{{after: after, charges: out.Charges, events: events}}); err != nil {
		return rental.Rental{}, false, err
	}
	if err := tx.Commit(ctx); err != nil {
		return rental.Rental{}, false, fmt.Errorf("committing start: %w", err)
	}
	return after, true, nil
}

// Stop ends the rental of an instance at now, waiting for a charge in progress on it. charge
// then charges the periods that started before the stop but were not charged yet. Stopping a
// stopped rental returns it unchanged.
func (s *Store) Stop(ctx context.Context, instanceID string, now time.Time, charge ChargeFunc) (rental.Rental, error) {
	tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{})
	if err != nil {
		return rental.Rental{}, fmt.Errorf("beginning stop: %w", err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	r, err := scanRental(tx.QueryRow(ctx, `SELECT `+rentalColumns+` FROM rentals WHERE instance_id = $1 FOR UPDATE`, instanceID))
	if errors.Is(err, pgx.ErrNoRows) {
		return rental.Rental{}, fmt.Errorf("%w: instance %s", rental.ErrNotFound, textcheck.Quote(instanceID))
	}
	if err != nil {
		return rental.Rental{}, fmt.Errorf("locking rental %q: %w", instanceID, err)
	}
	if r.State == rental.StateStopped {
		return r, nil
	}
	r.State, r.StoppedAt = rental.StateStopped, now
	out := charge(ctx, r)
	after := r.Apply(out, now)
	events := append(r.Events(out, now), r.Event(rental.EventStopped, now))
	if err := write(ctx, tx, now, []change{{after: after, charges: out.Charges, events: events}}); err != nil {
		return rental.Rental{}, err
	}
	if err := tx.Commit(ctx); err != nil {
		return rental.Rental{}, fmt.Errorf("committing stop: %w", err)
	}
	return after, nil
}

// ChargeDue claims up to limit rentals with a period due at now that no other transaction holds
// (FOR UPDATE SKIP LOCKED: replicas take disjoint batches), charges them with charge while they
// stay locked, and records the outcomes. It returns how many rentals it claimed.
func (s *Store) ChargeDue(ctx context.Context, now time.Time, limit int, charge BatchChargeFunc) (int, error) {
	tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{})
	if err != nil {
		return 0, fmt.Errorf("beginning charge batch: %w", err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	rows, err := tx.Query(ctx, `SELECT `+rentalColumns+` FROM rentals
WHERE next_charge_at <= $1 ORDER BY next_charge_at LIMIT $2 FOR UPDATE SKIP LOCKED`, now, limit)
	if err != nil {
		return 0, fmt.Errorf("claiming due rentals: %w", err)
	}
	rs, err := collectRentals(rows)
	if err != nil || len(rs) == 0 {
		return 0, err
	}
	outs := charge(ctx, rs)
	changes := make([]change, 0, len(rs))
	for i, r := range rs {
		o := outs[i]
		if len(o.Charges) == 0 && !o.Suspended {
			continue
		}
		changes = append(changes, change{after: r.Apply(o, now), charges: o.Charges, events: r.Events(o, now),
			notice: o.Suspended && r.State == rental.StateRunning})
	}
	if err := write(ctx, tx, now, changes); err != nil {
		return 0, err
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, fmt.Errorf("committing charge batch: %w", err)
	}
	return len(rs), nil
}

// change is the new state of one locked rental with what produced it.
type change struct {
	after   rental.Rental
	charges []rental.Charge
	events  []rental.Event
	// notice queues a suspension notice for the notifications service.
	notice bool
}

func nullableTime(t time.Time) pgtype.Timestamptz {
	return pgtype.Timestamptz{Time: t, Valid: !t.IsZero()}
}

// write records changes of locked rentals: their new state, their charged periods, suspension
// notices and their events.
func write(ctx context.Context, tx pgx.Tx, now time.Time, changes []change) error {
	if len(changes) == 0 {
		return nil
	}
	var (
		ids, periods, totals     []int64
		states                   []string
		suspended, stopped, next []pgtype.Timestamptz
		cInst                    []string
		cPeriod, cAmount         []int64
		cTx                      []string
		cGrace                   []bool
		nInst, nOrg, nReason     []string
		events                   []rental.Event
	)
	for _, c := range changes {
		r := c.after
		ids, periods, totals = append(ids, r.ID), append(periods, r.PeriodsCharged), append(totals, int64(r.TotalCharged))
		states = append(states, string(r.State))
		suspended, stopped = append(suspended, nullableTime(r.SuspendedAt)), append(stopped, nullableTime(r.StoppedAt))
		next = append(next, nullableTime(r.NextPeriodAt()))
		for _, ch := range c.charges {
			cInst, cPeriod, cAmount = append(cInst, r.InstanceID), append(cPeriod, ch.Period), append(cAmount, int64(ch.Amount))
			cTx, cGrace = append(cTx, ch.TransactionID), append(cGrace, ch.Grace)
		}
		if c.notice {
			nInst, nOrg = append(nInst, r.InstanceID), append(nOrg, r.OrgID)
			nReason = append(nReason, fmt.Sprintf("insufficient credits for billing period %d of instance %s (%s)", r.PeriodsCharged, r.InstanceID, r.InstanceType))
		}
		events = append(events, c.events...)
	}
	if _, err := tx.Exec(ctx, `UPDATE rentals r SET state = u.state, periods_charged = u.periods, total_charged = u.total,
suspended_at = u.suspended, stopped_at = u.stopped, next_charge_at = u.next
FROM unnest($1::bigint[], $2::text[], $3::bigint[], $4::bigint[], $5::timestamptz[], $6::timestamptz[], $7::timestamptz[])
AS u(id, state, periods, total, suspended, stopped, next) WHERE r.id = u.id`,
		ids, states, periods, totals, suspended, stopped, next); err != nil {
		return fmt.Errorf("updating rentals: %w", err)
	}
	if len(cInst) > 0 {
		if _, err := tx.Exec(ctx, `INSERT INTO charges (instance_id, period, amount, transaction_id, grace, charged_at)
SELECT i, p, a, t, g, $6 FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::text[], $5::boolean[]) AS u(i, p, a, t, g)`,
			cInst, cPeriod, cAmount, cTx, cGrace, now); err != nil {
			return fmt.Errorf("recording charges: %w", err)
		}
	}
	if len(nInst) > 0 {
		if _, err := tx.Exec(ctx, `INSERT INTO suspension_notices (instance_id, org_id, reason, created_at, next_attempt_at)
SELECT i, o, r, $4, $4 FROM unnest($1::text[], $2::text[], $3::text[]) AS u(i, o, r) ON CONFLICT (instance_id) DO NOTHING`,
			nInst, nOrg, nReason, now); err != nil {
			return fmt.Errorf("queueing suspension notices: %w", err)
		}
	}
	return insertEvents(ctx, tx, events)
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
// records the result: delivered, or retried after retryAfter(attempts).
func (s *Store) DeliverNotices(ctx context.Context, now time.Time, limit int, send func(context.Context, Notice) error,
	retryAfter func(attempts int) time.Duration) (delivered int, err error) {
	tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{})
	if err != nil {
		return 0, fmt.Errorf("beginning notice delivery: %w", err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	rows, err := tx.Query(ctx, `SELECT instance_id, org_id, reason, attempts FROM suspension_notices
WHERE sent_at IS NULL AND next_attempt_at <= $1 ORDER BY next_attempt_at LIMIT $2 FOR UPDATE SKIP LOCKED`, now, limit)
	if err != nil {
		return 0, fmt.Errorf("claiming notices: %w", err)
	}
	notices, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Notice, error) {
		var n Notice
		err := row.Scan(&n.InstanceID, &n.OrgID, &n.Reason, &n.Attempts)
		return n, err
	})
	if err != nil {
		return 0, fmt.Errorf("reading notices: %w", err)
	}
	var errs []error
	for _, n := range notices {
		if serr := send(ctx, n); serr != nil {
			errs = append(errs, fmt.Errorf("notice of %s: %w", n.InstanceID, serr))
			_, err = tx.Exec(ctx, `UPDATE suspension_notices SET attempts = attempts + 1, next_attempt_at = $2 WHERE instance_id = $1`,
				n.InstanceID, now.Add(retryAfter(n.Attempts+1)))
		} else {
			delivered++
			_, err = tx.Exec(ctx, `UPDATE suspension_notices SET attempts = attempts + 1, sent_at = $2 WHERE instance_id = $1`, n.InstanceID, now)
		}
		if err != nil {
			return 0, fmt.Errorf("recording notice delivery: %w", err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, fmt.Errorf("committing notice delivery: %w", err)
	}
	return delivered, errors.Join(errs...)
}
