package store

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tallyhq/tally/services/ledger/internal/ledger"
)

// UsagePage is what one call of UpdateUsage did.
type UsagePage struct {
	// Events is the number of outbox events read (and counted) after the cursor.
	Events int
	// Rows is the number of usage rows added to.
	Rows int
	// LastSeq is the cursor after the call.
	LastSeq int64
	// Busy is true when another replica held the cursor: nothing was read.
	Busy bool
}

// UpdateUsage adds the next page of outbox events (up to limit after the usage cursor) to the
// daily usage table: in one transaction it locks the cursor, reads the events with their
// transactions, writes what aggregate makes of them and moves the cursor past them. A page is
// therefore counted exactly once: a crash rolls the rows back with the cursor, and a replica
// that finds the cursor locked skips its turn (Busy) rather than waiting.
func (s *Store) UpdateUsage(parent context.Context, limit int, aggregate func([]ledger.UsageSource) []ledger.UsageDelta) (UsagePage, error) {
	ctx, cancel := s.deadline(parent)
	defer cancel()
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return UsagePage{}, fail(parent, fmt.Errorf("beginning usage update: %w", err))
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	var cursor int64
	err = tx.QueryRow(ctx, `SELECT last_seq FROM usage_cursor WHERE id = 1 FOR UPDATE SKIP LOCKED`).Scan(&cursor)
	if errors.Is(err, pgx.ErrNoRows) {
		return UsagePage{Busy: true}, nil
	}
	if err != nil {
		return UsagePage{}, fail(parent, fmt.Errorf("locking the usage cursor: %w", err))
	}
	// Only events below the horizon (seqHorizon): none committed later can take a lower seq, so
	// the cursor never passes an event still to be counted.
	rows, err := tx.Query(ctx, `SELECT e.seq, e.org_id, coalesce(t.kind, ''), coalesce(t.amount, 0), coalesce(t.currency, e.currency),
coalesce(t.created_at, e.occurred_at), coalesce(t.pricing->>'model_id', ''),
coalesce(t.metadata->>'`+ledger.MetaModelID+`', ''), coalesce(t.metadata->>'`+ledger.MetaInstanceType+`', ''),
coalesce(t.metadata->>'`+ledger.MetaProject+`', '')
FROM (SELECT seq, org_id, kind, transaction_id, currency, occurred_at FROM events WHERE seq > $1 AND seq < `+seqHorizon+` ORDER BY seq LIMIT $2) e
LEFT JOIN transactions t ON t.id = e.transaction_id AND e.kind IN ('debit', 'capture')
ORDER BY e.seq`, cursor, limit)
	if err != nil {
		return UsagePage{}, fail(parent, fmt.Errorf("reading events for usage: %w", err))
	}
	sources, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (ledger.UsageSource, error) {
		var u ledger.UsageSource
		var kind string
		err := r.Scan(&u.Seq, &u.OrgID, &kind, &u.Amount, &u.Currency, &u.CreatedAt, &u.PricingModel, &u.MetaModel, &u.MetaInstance, &u.MetaProject)
		u.TxKind = ledger.TxKind(kind)
		return u, err
	})
	if err != nil {
		return UsagePage{}, fail(parent, fmt.Errorf("reading events for usage: %w", err))
	}
	if len(sources) == 0 {
		return UsagePage{LastSeq: cursor}, nil
	}
	last := sources[len(sources)-1].Seq
	deltas := aggregate(sources)
	batch := &pgx.Batch{}
	// No wait for the WAL flush: a commit lost in a crash loses the rows and the cursor move
	// together, and the page is counted again from the durable outbox. This keeps the follower's
	// commits out of the fsync queue of the Debit path.
	batch.Queue(`SET LOCAL synchronous_commit = off`)
	if len(deltas) > 0 {
		n := len(deltas)
		orgs, days, kinds, items, currencies, amounts := make([]string, n), make([]time.Time, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		counts := make([]int64, n)
		for i, d := range deltas {
			orgs[i], days[i], kinds[i], items[i], currencies[i] = d.Key.OrgID, d.Key.Day, string(d.Key.Item.Kind), d.Key.Item.ID, d.Key.Currency
			amounts[i], counts[i] = d.Amount.String(), d.Count
		}
		batch.Queue(`INSERT INTO usage_daily AS u (org_id, day, kind, item_id, currency, amount, count)
SELECT o, d, k, i, c, a::numeric, n FROM unnest($1::text[], $2::date[], $3::text[], $4::text[], $5::text[], $6::text[], $7::bigint[]) AS x(o, d, k, i, c, a, n)
ON CONFLICT (org_id, day, kind, item_id, currency) DO UPDATE SET amount = u.amount + excluded.amount, count = u.count + excluded.count`,
			orgs, days, kinds, items, currencies, amounts, counts)
	}
	batch.Queue(`UPDATE usage_cursor SET last_seq = $1 WHERE id = 1`, last)
	if err := tx.SendBatch(ctx, batch).Close(); err != nil {
		return UsagePage{}, fail(parent, fmt.Errorf("writing usage: %w", err))
	}
	if err := tx.Commit(ctx); err != nil {
		return UsagePage{}, fail(parent, fmt.Errorf("committing usage: %w", err))
	}
	return UsagePage{Events: len(sources), Rows: len(deltas), LastSeq: last}, nil
}

// OutboxState is where the outbox and its usage follower stand.
type OutboxState struct {
	// Counted is the usage cursor: the seq of the last event counted in the daily usage table.
	Counted int64
	// Head is the seq of the newest committed event (0: none yet).
	Head int64
	// Uncounted is the number of committed events after Counted (those the follower has still
	// to count, or cannot yet: above the horizon), up to MaxUncounted.
	Uncounted int64
}

// MaxUncounted bounds OutboxState.Uncounted, so reading it stays a short index scan however far
// the follower is behind (ten times the lag the TallyLedgerUsageLagging alert fires at).
const MaxUncounted = 100_000

// UsageCursor returns where the outbox and its usage follower stand. Seqs are not dense (see
// seqHorizon), so the follower's lag is a count of events, not a difference of seqs.
func (s *Store) UsageCursor(parent context.Context) (OutboxState, error) {
	ctx, cancel := s.deadline(parent)
	defer cancel()
	var o OutboxState
	err := s.pool.QueryRow(ctx, `WITH c AS (SELECT last_seq FROM usage_cursor WHERE id = 1)
SELECT c.last_seq, (SELECT coalesce(max(seq), 0) FROM events),
    (SELECT count(*) FROM (SELECT 1 FROM events WHERE seq > c.last_seq LIMIT $1) u)
FROM c`, MaxUncounted).Scan(&o.Counted, &o.Head, &o.Uncounted)
	if err != nil {
		return OutboxState{}, fail(parent, fmt.Errorf("reading the usage cursor: %w", err))
	}
	return o, nil
}

// UsageRows reads an organization's daily usage rows in currency from one day to another (both
// included), with the account's currency (the default one for an organization never charged).
func (s *Store) UsageRows(parent context.Context, orgID string, from, to time.Time) (currency string, rows []ledger.UsageRow, err error) {
	ctx, cancel := s.deadline(parent)
	defer cancel()
	currency = s.cfg.DefaultCurrency
	batch := &pgx.Batch{}
	batch.Queue(`SELECT currency FROM accounts WHERE kind = 'org' AND org_id = $1`, orgID).QueryRow(func(row pgx.Row) error {
		if err := row.Scan(&currency); err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("reading the account currency: %w", err)
		}
		return nil
	})
	batch.Queue(`SELECT day, currency, kind, item_id, amount::text, count FROM usage_daily
WHERE org_id = $1 AND day BETWEEN $2::date AND $3::date ORDER BY day, kind, item_id`, orgID, from, to).Query(func(r pgx.Rows) error {
		for r.Next() {
			var row ledger.UsageRow
			var cur, kind, amount string
			if err := r.Scan(&row.Day, &cur, &kind, &row.Item.ID, &amount, &row.Count); err != nil {
				return fmt.Errorf("scanning usage: %w", err)
			}
			if cur != currency {
				continue // an account's currency never changes; rows of another are not its usage
			}
			a, ok := new(big.Int).SetString(amount, 10)
			if !ok {
				return fmt.Errorf("usage amount %q is not an integer", amount)
			}
			row.Item.Kind, row.Amount = ledger.UsageKind(kind), a
			rows = append(rows, row)
		}
		return r.Err()
	})
	if err := s.pool.SendBatch(ctx, batch).Close(); err != nil {
		return "", nil, fail(parent, fmt.Errorf("reading usage: %w", err))
	}
	return currency, rows, nil
}
