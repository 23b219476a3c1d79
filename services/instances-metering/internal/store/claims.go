package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/tallyhq/tally/services/instances-metering/internal/rental"
)

// recordTimeout bounds the transaction that records an outcome; it runs even when the caller's
// context ended meanwhile, since the ledger may have charged already.
const recordTimeout = 10 * time.Second

// Claim is a replica's lease on rentals it is about to charge. It is written and committed before
// any ledger call, so no transaction and no row lock is held while the ledger answers; Record
// releases it with the outcome. Another replica takes a rental over only once Expires has passed,
// and then the token fences the first claimer's record out.
type Claim struct {
	// Token identifies this claim (a UUID).
	Token string
	// Owner names the replica holding it, for operators.
	Owner string
	// Horizon is the claimer's now: it charges the periods started at or before it.
	Horizon time.Time
	// Expires ends the lease.
	Expires time.Time
}

// Held is the claim a rental carries, as another writer sees it.
type Held = Claim

// Live reports whether the claim still holds the rental at now.
func (h Held) Live(now time.Time) bool { return h.Token != "" && now.Before(h.Expires) }

const claimColumns = `coalesce(claim_token::text, ''), coalesce(claimed_by, ''), claim_horizon, claim_expires_at`

// InsertStarting inserts r in state starting, claimed by c, and commits: the first period is
// charged after this returns, with no transaction open, and recorded with Record. When the
// instance already has a rental, InsertStarting returns it (in any state) with inserted false.
func (s *Store) InsertStarting(ctx context.Context, r rental.Rental, c Claim) (_ rental.Rental, inserted bool, err error) {
	err = s.pool.QueryRow(ctx, `INSERT INTO rentals (instance_id, org_id, instance_type, price_version_id, hourly_price, currency,
period_ns, period_price, idempotency_key, state, started_at, next_charge_at, claim_token, claimed_by, claim_horizon, claim_expires_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'starting', $10, $10, $11::text::uuid, $12, $13, $14)
ON CONFLICT (instance_id) DO NOTHING RETURNING id`,
		r.InstanceID, r.OrgID, r.InstanceType, r.PriceVersionID, int64(r.HourlyPrice), r.Currency,
		int64(r.Period), int64(r.PeriodPrice), r.IdempotencyKey, r.StartedAt, c.Token, c.Owner, c.Horizon, c.Expires).Scan(&r.ID)
	if errors.Is(err, pgx.ErrNoRows) {
		existing, err := s.Lookup(ctx, r.InstanceID)
		return existing, false, err
	}
	if err != nil {
		return rental.Rental{}, false, fmt.Errorf("inserting rental: %w", err)
	}
	r.State = rental.StateStarting
	return r, true, nil
}

// ClaimStart claims a starting rental whose claim has expired (or was released after a failed
// charge), to complete its start. It reports false when another claim still holds it or the
// rental is no longer starting.
func (s *Store) ClaimStart(ctx context.Context, instanceID string, c Claim) (rental.Rental, bool, error) {
	r, err := scanRental(s.pool.QueryRow(ctx, `UPDATE rentals SET claim_token = $2::text::uuid, claimed_by = $3, claim_horizon = $4, claim_expires_at = $5
WHERE instance_id = $1 AND state = 'starting' AND (claim_token IS NULL OR claim_expires_at <= $4)
RETURNING `+rentalColumns, instanceID, c.Token, c.Owner, c.Horizon, c.Expires))
	if errors.Is(err, pgx.ErrNoRows) {
		return rental.Rental{}, false, nil
	}
	if err != nil {
		return rental.Rental{}, false, fmt.Errorf("claiming the start of %q: %w", instanceID, err)
	}
	return r, true, nil
}

// ClaimDue claims up to limit rentals with a period due at c.Horizon that no live claim holds
// (and no retry pause), and commits: replicas take disjoint sets (FOR UPDATE SKIP LOCKED inside
// the claiming statement), and a rental whose claimer died is taken over once its lease expired.
func (s *Store) ClaimDue(ctx context.Context, limit int, c Claim) ([]rental.Rental, error) {
	rows, err := s.pool.Query(ctx, `UPDATE rentals SET claim_token = $3::text::uuid, claimed_by = $4, claim_horizon = $1, claim_expires_at = $5
FROM (SELECT id AS due_id FROM rentals WHERE next_charge_at <= $1 AND (claim_expires_at IS NULL OR claim_expires_at <= $1)
      ORDER BY next_charge_at LIMIT $2 FOR UPDATE SKIP LOCKED) due
WHERE id = due.due_id RETURNING `+rentalColumns, c.Horizon, limit, c.Token, c.Owner, c.Expires)
	if err != nil {
		return nil, fmt.Errorf("claiming due rentals: %w", err)
	}
	return collectRentals(rows)
}

// Change is the new state of a rental decided by UpdateRental's caller.
type Change struct {
	After  rental.Rental
	Events []rental.Event
	// Claim, when set, is taken over the rental (replacing any other, whose record it fences
	// out); nil releases any claim.
	Claim *Claim
}

// UpdateRental loads and locks the rental of an instance (any state), calls decide with it and
// the claim it carries, and writes the change decide returns (none when nil), in one short
// transaction with no call to another service inside it. It returns the rental as written.
func (s *Store) UpdateRental(ctx context.Context, instanceID string, decide func(cur rental.Rental, held Held) (*Change, error)) (rental.Rental, error) {
	tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{})
	if err != nil {
		return rental.Rental{}, fmt.Errorf("beginning rental update: %w", err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	var held Held
	var horizon, expires *time.Time
	r, err := scanRental(tx.QueryRow(ctx, `SELECT `+rentalColumns+`, `+claimColumns+` FROM rentals WHERE instance_id = $1 FOR UPDATE`, instanceID),
		&held.Token, &held.Owner, &horizon, &expires)
	if errors.Is(err, pgx.ErrNoRows) {
		return rental.Rental{}, fmt.Errorf("%w: instance %q", rental.ErrNotFound, instanceID)
	}
	if err != nil {
		return rental.Rental{}, fmt.Errorf("locking rental %q: %w", instanceID, err)
	}
	if horizon != nil {
		held.Horizon = horizon.UTC()
	}
	if expires != nil {
		held.Expires = expires.UTC()
	}
	c, err := decide(r, held)
	if err != nil || c == nil {
		return r, err
	}
	a := c.After
	var token, owner pgtype.Text
	var claimHorizon, claimExpires pgtype.Timestamptz
	if c.Claim != nil {
		token, owner = pgtype.Text{String: c.Claim.Token, Valid: true}, pgtype.Text{String: c.Claim.Owner, Valid: true}
		claimHorizon, claimExpires = nullableTime(c.Claim.Horizon), nullableTime(c.Claim.Expires)
	}
	if _, err := tx.Exec(ctx, `UPDATE rentals SET state = $2, periods_charged = $3, total_charged = $4, suspended_at = $5, stopped_at = $6,
next_charge_at = $7, claim_token = $8::text::uuid, claimed_by = $9, claim_horizon = $10, claim_expires_at = $11 WHERE id = $1`,
		a.ID, string(a.State), a.PeriodsCharged, int64(a.TotalCharged), nullableTime(a.SuspendedAt), nullableTime(a.StoppedAt),
		nullableTime(a.NextPeriodAt()), token, owner, claimHorizon, claimExpires); err != nil {
		return rental.Rental{}, fmt.Errorf("updating rental %q: %w", instanceID, err)
	}
	if err := insertEvents(ctx, tx, c.Events); err != nil {
		return rental.Rental{}, err
	}
	if err := tx.Commit(ctx); err != nil {
		return rental.Rental{}, fmt.Errorf("committing rental update: %w", err)
	}
	return a, nil
}

// Record is the outcome of charging one claimed rental.
type Record struct {
	After   rental.Rental
	Charges []rental.Charge
	Events  []rental.Event
	// Notice queues a suspension notice for the notifications service.
	Notice bool
	// Delete removes a rental whose start the ledger refused (nothing was charged).
	Delete bool
	// RetryAt, when set, keeps the rental from being claimed again before it (its charge failed
	// and is retried at that pace).
	RetryAt time.Time
}

// Record writes the outcomes of rentals claimed with token and releases their claims, in one
// short transaction. A rental whose claim is no longer token (its lease expired and another
// replica took it over) is left to that replica: recorded[i] is false for it and nothing of its
// record is written. The charges' primary key (instance_id, period) backs this up: a period is
// never recorded twice.
func (s *Store) Record(ctx context.Context, now time.Time, token string, records []Record) (recorded []bool, err error) {
	if len(records) == 0 {
		return make([]bool, 0), nil
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), recordTimeout)
	defer cancel()
	tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{})
	if err != nil {
		return nil, fmt.Errorf("beginning record: %w", err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	if recorded, err = recordRentals(ctx, tx, token, records); err != nil {
		return nil, err
	}
	if err := recordOutcomes(ctx, tx, now, records, recorded); err != nil {
		return nil, err
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, fmt.Errorf("committing record: %w", err)
	}
	return recorded, nil
}

// recordRentals writes the rentals of records still claimed with token (or removes the refused
// starts among them) and releases their claims; recorded[i] says whether records[i] was.
func recordRentals(ctx context.Context, tx pgx.Tx, token string, records []Record) ([]bool, error) {
	recorded := make([]bool, len(records))
	var (
		ids, periods, totals, deletes  []int64
		states                         []string
		suspended, stopped, next, hold []pgtype.Timestamptz
	)
	index := make(map[int64]int, len(records))
	for i, rec := range records {
		r := rec.After
		index[r.ID] = i
		if rec.Delete {
			deletes = append(deletes, r.ID)
			continue
		}
		ids, periods, totals = append(ids, r.ID), append(periods, r.PeriodsCharged), append(totals, int64(r.TotalCharged))
		states = append(states, string(r.State))
		suspended, stopped = append(suspended, nullableTime(r.SuspendedAt)), append(stopped, nullableTime(r.StoppedAt))
		next, hold = append(next, nullableTime(r.NextPeriodAt())), append(hold, nullableTime(rec.RetryAt))
	}
	mark := func(rows pgx.Rows, what string) error {
		got, err := pgx.CollectRows(rows, pgx.RowTo[int64])
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		for _, id := range got {
			recorded[index[id]] = true
		}
		return nil
	}
	if len(ids) > 0 {
		rows, err := tx.Query(ctx, `UPDATE rentals r SET state = u.state, periods_charged = u.periods, total_charged = u.total,
suspended_at = u.suspended, stopped_at = u.stopped, next_charge_at = u.next,
claim_token = NULL, claimed_by = NULL, claim_horizon = NULL, claim_expires_at = u.hold
FROM unnest($1::bigint[], $2::text[], $3::bigint[], $4::bigint[], $5::timestamptz[], $6::timestamptz[], $7::timestamptz[], $8::timestamptz[])
AS u(id, state, periods, total, suspended, stopped, next, hold) WHERE r.id = u.id AND r.claim_token = $9::text::uuid RETURNING r.id`,
			ids, states, periods, totals, suspended, stopped, next, hold, token)
		if err != nil {
			return nil, fmt.Errorf("recording rentals: %w", err)
		}
		if err := mark(rows, "recording rentals"); err != nil {
			return nil, err
		}
	}
	if len(deletes) > 0 {
		rows, err := tx.Query(ctx, `DELETE FROM rentals WHERE id = ANY($1) AND claim_token = $2::text::uuid AND state = 'starting' RETURNING id`, deletes, token)
		if err != nil {
			return nil, fmt.Errorf("removing refused starts: %w", err)
		}
		if err := mark(rows, "removing refused starts"); err != nil {
			return nil, err
		}
	}
	return recorded, nil
}

// recordOutcomes writes the charges, suspension notices and events of the records that were
// recorded (and not removed).
func recordOutcomes(ctx context.Context, tx pgx.Tx, now time.Time, records []Record, recorded []bool) error {
	var (
		cInst                []string
		cPeriod, cAmount     []int64
		cTx                  []string
		cGrace               []bool
		nInst, nOrg, nReason []string
		events               []rental.Event
	)
	for i, rec := range records {
		if !recorded[i] || rec.Delete {
			continue
		}
		r := rec.After
		for _, ch := range rec.Charges {
			cInst, cPeriod, cAmount = append(cInst, r.InstanceID), append(cPeriod, ch.Period), append(cAmount, int64(ch.Amount))
			cTx, cGrace = append(cTx, ch.TransactionID), append(cGrace, ch.Grace)
		}
		if rec.Notice {
			nInst, nOrg = append(nInst, r.InstanceID), append(nOrg, r.OrgID)
			nReason = append(nReason, fmt.Sprintf("insufficient credits for billing period %d of instance %s (%s)", r.PeriodsCharged, r.InstanceID, r.InstanceType))
		}
		events = append(events, rec.Events...)
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
