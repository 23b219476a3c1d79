package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/tallyhq/tally/pkg/money"
	"github.com/tallyhq/tally/services/ledger/internal/ledger"
)

// A move of an organization between shards (internal/shard.Mover) is three transactions, each on
// one shard and each idempotent by the move's key (the shard_moves rows):
//
//  1. FreezeIncoming on the target: the organization's account there is frozen (created if
//     needed), so nothing is written there before its history arrives.
//  2. MoveOut on the source: under the account's row lock, its balance goes to the source's
//     shard_transfer account (an adjustment), its active holds become 'moved', and moved_to
//     fences the row: from this commit on, every write of the organization on the source is
//     refused (ledger.Account.Resident) and retried on the target.
//  3. MoveIn on the target: the organization's transactions (with postings against the target's
//     shard_transfer account), holds, idempotency keys and usage rows are copied from the frozen
//     source, its balance comes from shard_transfer (an adjustment, expiry preserved) and the
//     row is unfrozen.
//
// The move-in writes one outbox event, the marker (ledger.EventMovedIn), and records its sequence
// on its 'in' row (marker_seq) beside the source's last_event: the merged event stream holds the
// target's events at the marker until the source's stream has passed last_event (internal/shard),
// and sends no marker on. Nothing else is written to the outbox: the organization's balance is
// the same before and after, so nothing that follows the events has anything to do.

// transferAccount names the shard_transfer platform account of currency (one row: moves are rare).
func transferAccount(currency string) string {
	return ledger.PlatformAccountName("shard_transfer", currency, 0)
}

// moveRecord is a shard_moves row.
const moveColumns = `org_id, from_shard, to_shard, currency, amount, held,
coalesce((extract(epoch from expires_at) * 1000000)::bigint, 0), last_event`

func scanMove(row pgx.Row, key string) (ledger.Move, error) {
	m := ledger.Move{Key: key}
	var amount, held, exp int64
	if err := row.Scan(&m.OrgID, &m.From, &m.To, &m.Currency, &amount, &held, &exp, &m.LastEvent); err != nil {
		return ledger.Move{}, err
	}
	m.Amount, m.Held, m.ExpiresAt = money.Nanos(amount), money.Nanos(held), fromMicros(exp)
	return m, nil
}

// MoveRecord returns the move of key in direction ("out" or "in") this shard recorded.
func (s *Store) MoveRecord(parent context.Context, key, direction string) (ledger.Move, bool, error) {
	ctx, cancel := s.deadline(parent)
	defer cancel()
	m, err := scanMove(s.pool.QueryRow(ctx, `SELECT `+moveColumns+` FROM shard_moves WHERE move_key = $1 AND direction = $2`, key, direction), key)
	if errors.Is(err, pgx.ErrNoRows) {
		return ledger.Move{}, false, nil
	}
	if err != nil {
		return ledger.Move{}, false, fail(parent, fmt.Errorf("reading move %s: %w", key, err))
	}
	return m, true, nil
}

// FreezeIncoming freezes org's account on this shard, the target of a move, creating it in
// currency if needed. An account resident here (neither moved away nor frozen) is refused: the
// organization already lives here.
func (s *Store) FreezeIncoming(parent context.Context, org, currency string) error {
	ctx, cancel := s.deadline(parent)
	defer cancel()
	var resident bool
	err := s.pool.QueryRow(ctx, `WITH ins AS (
    INSERT INTO accounts (name, kind, org_id, currency, frozen) VALUES ('org:' || $1, 'org', $1, $2, true) ON CONFLICT DO NOTHING RETURNING id
), upd AS (
    UPDATE accounts SET frozen = true, moved_to = NULL WHERE kind = 'org' AND org_id = $1 AND moved_to IS NOT NULL RETURNING id
)
SELECT NOT EXISTS (SELECT 1 FROM ins) AND NOT EXISTS (SELECT 1 FROM upd)
    AND EXISTS (SELECT 1 FROM accounts WHERE kind = 'org' AND org_id = $1 AND moved_to IS NULL AND NOT frozen)`, org, currency).Scan(&resident)
	if err != nil {
		return fail(parent, fmt.Errorf("freezing %s: %w", org, err))
	}
	if resident {
		return fmt.Errorf("%w: %s already lives on this shard", ledger.ErrInvalid, org)
	}
	return nil
}

// MoveOut moves org out of this shard to shard to, in one transaction under the account's row
// lock (see the top of this file), and returns the move; run again with the same key it returns
// the recorded move and changes nothing.
func (s *Store) MoveOut(parent context.Context, key, org, from, to, actor string) (ledger.Move, error) {
	ctx, cancel := s.deadline(parent)
	defer cancel()
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return ledger.Move{}, fail(parent, fmt.Errorf("beginning move out: %w", err))
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	if m, err := scanMove(tx.QueryRow(ctx, `SELECT `+moveColumns+` FROM shard_moves WHERE move_key = $1 AND direction = 'out'`, key), key); err == nil {
		return m, nil
	} else if !errors.Is(err, pgx.ErrNoRows) {
		return ledger.Move{}, fail(parent, fmt.Errorf("reading move %s: %w", key, err))
	}
	// The fence needs a row even for an organization never written here.
	if _, err := tx.Exec(ctx, `INSERT INTO accounts (name, kind, org_id, currency) VALUES ('org:' || $1, 'org', $1, $2) ON CONFLICT DO NOTHING`,
		org, s.cfg.DefaultCurrency); err != nil {
		return ledger.Move{}, fail(parent, fmt.Errorf("opening account: %w", err))
	}
	acct, err := scanAccount(tx.QueryRow(ctx, `SELECT `+accountColumns+` FROM accounts WHERE kind = 'org' AND org_id = $1 FOR UPDATE`, org))
	if err != nil {
		return ledger.Move{}, fail(parent, fmt.Errorf("locking account: %w", err))
	}
	if err := acct.Resident(); err != nil {
		return ledger.Move{}, fmt.Errorf("moving %s out: %w", org, err)
	}
	m := ledger.Move{Key: key, OrgID: org, From: from, To: to, Currency: acct.Currency, Amount: acct.Balance, Held: acct.Held, ExpiresAt: acct.ExpiresAt}
	if err := tx.QueryRow(ctx, `SELECT coalesce(max(seq), 0) FROM events WHERE org_id = $1`, org).Scan(&m.LastEvent); err != nil {
		return ledger.Move{}, fail(parent, fmt.Errorf("reading the last event: %w", err))
	}
	if acct.Balance != 0 {
		if err := s.bookMove(ctx, tx, acct, -acct.Balance, 0, "shard-move:"+key+":out", "moved to ledger shard "+to, actor); err != nil {
			return ledger.Move{}, fail(parent, err)
		}
	}
	batch := &pgx.Batch{}
	batch.Queue(`UPDATE holds SET status = 'moved', ended_at = now() WHERE org_id = $1 AND status = 'active'`, org)
	batch.Queue(`UPDATE accounts SET balance = 0, held = 0, expires_at = NULL, moved_to = $2, version = version + 1 WHERE id = $1`, acct.ID, to)
	// Retires this shard's cache entries: a replica with a stale map reads the fence from PostgreSQL.
	batch.Queue(`UPDATE cache_epoch SET epoch = epoch + 1 WHERE id = 1`)
	batch.Queue(`INSERT INTO shard_moves (move_key, direction, org_id, from_shard, to_shard, currency, amount, held, expires_at, last_event)
VALUES ($1, 'out', $2, $3, $4, $5, $6, $7, CASE WHEN $8::bigint = 0 THEN NULL ELSE 'epoch'::timestamptz + $8 * interval '1 microsecond' END, $9)`,
		key, org, from, to, m.Currency, int64(m.Amount), int64(m.Held), toMicros(m.ExpiresAt), m.LastEvent)
	if err := tx.SendBatch(ctx, batch).Close(); err != nil {
		return ledger.Move{}, fail(parent, fmt.Errorf("moving %s out: %w", org, err))
	}
	if err := tx.Commit(ctx); err != nil {
		return ledger.Move{}, fail(parent, fmt.Errorf("committing move out: %w", err))
	}
	return m, nil
}

// bookMove writes the adjustment of a move on org's account: delta against the shard_transfer
// account, leaving balanceAfter. The account row itself is updated by the caller.
func (s *Store) bookMove(ctx context.Context, tx pgx.Tx, acct ledger.Account, delta, balanceAfter money.Nanos, idemKey, desc, actor string) error {
	ids, err := s.platformIDs(ctx, []string{transferAccount(acct.Currency)})
	if err != nil {
		return err
	}
	transfer := ids[transferAccount(acct.Currency)]
	id := uuid.Must(uuid.NewV7()).String()
	batch := &pgx.Batch{}
	batch.Queue(`INSERT INTO transactions (id, org_id, kind, amount, balance_after, currency, description, reason, idempotency_key, actor, created_at)
VALUES ($1, $2, 'adjustment', $3, $4, $5, $6, 'shard move', $7, $8, now())`, id, acct.OrgID, int64(delta), int64(balanceAfter), acct.Currency, desc, idemKey, actor)
	batch.Queue(`INSERT INTO postings (transaction_id, account_id, amount) VALUES ($1, $2, $3), ($1, $4, $5)`, id, acct.ID, int64(delta), transfer, -int64(delta))
	batch.Queue(`UPDATE accounts SET balance = balance - $2::bigint, version = version + 1 WHERE id = $1`, transfer, int64(delta))
	if err := tx.SendBatch(ctx, batch).Close(); err != nil {
		return fmt.Errorf("booking the move: %w", err)
	}
	return nil
}

// MoveMarker returns the move whose move-in committed the marker event seq on this shard (found
// false for any other event, and for the moves recorded before markers existed). The move's key
// is not read.
func (s *Store) MoveMarker(parent context.Context, seq int64) (ledger.Move, bool, error) {
	ctx, cancel := s.deadline(parent)
	defer cancel()
	m, err := scanMove(s.pool.QueryRow(ctx, `SELECT `+moveColumns+` FROM shard_moves WHERE direction = 'in' AND marker_seq = $1`, seq), "")
	if errors.Is(err, pgx.ErrNoRows) {
		return ledger.Move{}, false, nil
	}
	if err != nil {
		return ledger.Move{}, false, fail(parent, fmt.Errorf("reading the move of marker %d: %w", seq, err))
	}
	return m, true, nil
}

// UsageCounted reports whether this shard's usage follower has counted its outbox up to seq.
func (s *Store) UsageCounted(parent context.Context, seq int64) (bool, error) {
	o, err := s.UsageCursor(parent)
	if err != nil {
		return false, err
	}
	return o.Counted >= seq, nil
}

// movePage is the number of transactions copied per statement by MoveIn.
const movePage = 5000

// MoveIn copies m's organization from src (the source shard, where m is recorded out and the
// organization is fenced, so nothing of it changes any more) into this shard and unfreezes it
// here, in one transaction; run again with the same key it does nothing. The source's usage
// follower must have counted m.LastEvent (UsageCounted), so its usage rows are complete. marker
// is the move-in's outbox event (ledger.MovedInEvent), committed with it.
func (s *Store) MoveIn(parent context.Context, m ledger.Move, src *Store, marker ledger.Event, actor string) error {
	tx, err := s.pool.Begin(parent)
	if err != nil {
		return fail(parent, fmt.Errorf("beginning move in: %w", err))
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(parent)) }()
	var done bool
	if err := tx.QueryRow(parent, `SELECT EXISTS (SELECT 1 FROM shard_moves WHERE move_key = $1 AND direction = 'in')`, m.Key).Scan(&done); err != nil {
		return fail(parent, fmt.Errorf("reading move %s: %w", m.Key, err))
	}
	if done {
		return nil
	}
	acct, err := scanAccount(tx.QueryRow(parent, `SELECT `+accountColumns+` FROM accounts WHERE kind = 'org' AND org_id = $1 FOR UPDATE`, m.OrgID))
	if err != nil {
		return fail(parent, fmt.Errorf("locking account: %w", err))
	}
	if !acct.Frozen {
		return fmt.Errorf("%w: %s is not frozen for a move in here", ledger.ErrInvalid, m.OrgID)
	}
	ids, err := s.platformIDs(parent, []string{transferAccount(m.Currency)})
	if err != nil {
		return fail(parent, err)
	}
	transfer := ids[transferAccount(m.Currency)]
	copied, err := s.copyTransactions(parent, tx, src, m.OrgID, acct.ID, transfer)
	if err != nil {
		return fail(parent, err)
	}
	// The org's postings here must sum to m.Amount: what it held here before (0 unless a move
	// left something), the copies (a closed history nets to zero) and the move-in adjustment.
	delta := m.Amount - acct.Balance - copied
	if delta != 0 {
		if err := s.bookMove(parent, tx, acct, delta, m.Amount, "shard-move:"+m.Key+":in", "moved from ledger shard "+m.From, actor); err != nil {
			return fail(parent, err)
		}
	}
	if err := s.copyRest(parent, tx, src, m.OrgID); err != nil {
		return fail(parent, err)
	}
	if err := s.copyProjectLimits(parent, tx, src, m.OrgID); err != nil {
		return fail(parent, err)
	}
	// The spend limit and the month's spending move with the organization (the source's row
	// keeps them as they were when it moved out: its writes were refused since).
	srcAcct, _, err := src.Account(parent, m.OrgID)
	if err != nil {
		return err
	}
	var spendMonth int64
	if !srcAcct.Spend.Month.IsZero() {
		spendMonth = srcAcct.Spend.Month.Unix()
	}
	batch := &pgx.Batch{}
	batch.Queue(`UPDATE accounts SET spend_limit = $2, spend_alert_percent = $3, month_spend = $5, spend_alerted = $6,
    spend_month = CASE WHEN $4::bigint = 0 THEN NULL ELSE 'epoch'::date + ($4::bigint / 86400)::int END WHERE id = $1`,
		acct.ID, int64(srcAcct.Limit.Amount), srcAcct.Limit.AlertPercent, spendMonth, int64(srcAcct.Spend.Amount), srcAcct.Spend.Alerted)
	batch.Queue(`UPDATE accounts SET balance = $2::bigint, held = $3, version = version + 1, frozen = false, moved_to = NULL,
    expires_at = CASE WHEN $4::bigint = 0 THEN NULL ELSE 'epoch'::timestamptz + $4 * interval '1 microsecond' END WHERE id = $1`,
		acct.ID, int64(m.Amount), int64(m.Held), toMicros(m.ExpiresAt))
	batch.Queue(`UPDATE cache_epoch SET epoch = epoch + 1 WHERE id = 1`)
	if err := queueInsertEvents(batch, []ledger.Event{marker}); err != nil {
		return fail(parent, fmt.Errorf("moving %s in: %w", m.OrgID, err))
	}
	// The marker is the organization's newest event here: it was frozen since before this
	// transaction, so no other of its events can be in flight.
	batch.Queue(`INSERT INTO shard_moves (move_key, direction, org_id, from_shard, to_shard, currency, amount, held, expires_at, last_event, marker_seq)
VALUES ($1, 'in', $2, $3, $4, $5, $6, $7, CASE WHEN $8::bigint = 0 THEN NULL ELSE 'epoch'::timestamptz + $8 * interval '1 microsecond' END, $9,
    (SELECT max(seq) FROM events WHERE org_id = $2 AND kind = $10))`,
		m.Key, m.OrgID, m.From, m.To, m.Currency, int64(m.Amount), int64(m.Held), toMicros(m.ExpiresAt), m.LastEvent, string(ledger.EventMovedIn))
	if err := tx.SendBatch(parent, batch).Close(); err != nil {
		return fail(parent, fmt.Errorf("moving %s in: %w", m.OrgID, err))
	}
	if err := tx.Commit(parent); err != nil {
		return fail(parent, fmt.Errorf("committing move in: %w", err))
	}
	s.knownOrgs.Store(m.OrgID, struct{}{})
	return nil
}

// copyTransactions copies the organization's transactions of src that this shard lacks (a
// history that came back keeps its rows), in their order, each with the org posting and its
// counter-entry on the shard_transfer account, and returns the sum of their amounts.
func (s *Store) copyTransactions(ctx context.Context, tx pgx.Tx, src *Store, org string, orgAcct, transfer int64) (money.Nanos, error) {
	var total int64
	after := int64(0)
	for {
		page, last, err := src.transactionPage(ctx, org, after)
		if err != nil {
			return 0, err
		}
		if len(page.ids) == 0 {
			return money.Nanos(total), nil
		}
		after = last
		var sum int64
		// The postings are inserted by the statement that inserts the transactions, so the
		// balance trigger sees each transaction's two postings together.
		err = tx.QueryRow(ctx, `WITH ins AS (
    INSERT INTO transactions (id, org_id, kind, amount, balance_after, currency, description, metadata, reason, reference, idempotency_key, actor, hold_id, created_at, pricing, request_hash)
    SELECT id::uuid, $16, k, a, ba, c, d, m::jsonb, r, ref, ik, ac, NULLIF(h, '')::uuid, 'epoch'::timestamptz + ca * interval '1 microsecond', NULLIF(p, '')::json, rh
    FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::text[], $13::bigint[], $14::text[], $18::bytea[])
      WITH ORDINALITY AS u(id, k, a, ba, c, d, m, r, ref, ik, ac, h, ca, p, rh, n)
    ORDER BY u.n
    ON CONFLICT (id) DO NOTHING RETURNING id, amount
), post AS (
    INSERT INTO postings (transaction_id, account_id, amount)
    SELECT ins.id, v.acct, v.amt FROM ins CROSS JOIN LATERAL (VALUES ($15::bigint, ins.amount), ($17::bigint, -ins.amount)) AS v(acct, amt) WHERE ins.amount <> 0
)
SELECT coalesce(sum(amount), 0)::bigint FROM ins`,
			page.ids, page.kinds, page.amounts, page.after, page.currencies, page.descs, page.metas, page.reasons, page.refs, page.keys,
			page.actors, page.holdIDs, page.created, page.pricings, orgAcct, org, transfer, page.hashes).Scan(&sum)
		if err != nil {
			return 0, fmt.Errorf("copying transactions: %w", err)
		}
		if sum != 0 {
			if _, err := tx.Exec(ctx, `UPDATE accounts SET balance = balance - $2::bigint, version = version + 1 WHERE id = $1`, transfer, sum); err != nil {
				return 0, fmt.Errorf("booking copied transactions: %w", err)
			}
		}
		total += sum
	}
}

// transactionPage reads up to movePage of org's transactions after seq, in seq order.
func (s *Store) transactionPage(parent context.Context, org string, after int64) (txColumns, int64, error) {
	ctx, cancel := s.deadline(parent)
	defer cancel()
	rows, err := s.pool.Query(ctx, `SELECT id::text, kind, amount, balance_after, currency, description, metadata::text, reason, reference,
idempotency_key, actor, coalesce(hold_id::text, ''), (extract(epoch from created_at) * 1000000)::bigint, coalesce(pricing::text, ''), request_hash, seq
FROM transactions WHERE org_id = $1 AND seq > $2 ORDER BY seq LIMIT $3`, org, after, movePage)
	if err != nil {
		return txColumns{}, 0, fail(parent, fmt.Errorf("reading transactions to move: %w", err))
	}
	defer rows.Close()
	var c txColumns
	var last int64
	for rows.Next() {
		var id, kind, cur, desc, meta, reason, ref, key, actor, hold, pricing string
		var amount, after, created int64
		var hash []byte
		if err := rows.Scan(&id, &kind, &amount, &after, &cur, &desc, &meta, &reason, &ref, &key, &actor, &hold, &created, &pricing, &hash, &last); err != nil {
			return txColumns{}, 0, fmt.Errorf("scanning transaction to move: %w", err)
		}
		c.ids, c.kinds, c.amounts, c.after, c.currencies = append(c.ids, id), append(c.kinds, kind), append(c.amounts, amount), append(c.after, after), append(c.currencies, cur)
		c.descs, c.metas, c.reasons, c.refs, c.keys = append(c.descs, desc), append(c.metas, meta), append(c.reasons, reason), append(c.refs, ref), append(c.keys, key)
		c.actors, c.holdIDs, c.created, c.pricings = append(c.actors, actor), append(c.holdIDs, hold), append(c.created, created), append(c.pricings, pricing)
		c.hashes = append(c.hashes, hash)
	}
	return c, last, fail(parent, rows.Err())
}

// copyRest copies the organization's holds (a hold the move left 'moved' on the source is active
// here), idempotency keys (a replay after the move answers the original result) and usage rows
// (replacing this shard's: the source's are the whole of them) from src.
func (s *Store) copyRest(ctx context.Context, tx pgx.Tx, src *Store, org string) error {
	holds, keys, usage, err := src.orgRows(ctx, org)
	if err != nil {
		return err
	}
	batch := &pgx.Batch{}
	batch.Queue(`INSERT INTO holds (id, org_id, amount, currency, status, description, expires_at, created_at, ended_at, captured, transaction_id)
SELECT id::uuid, $1, a, c, CASE WHEN st = 'moved' THEN 'active' ELSE st END, d,
    'epoch'::timestamptz + e * interval '1 microsecond', 'epoch'::timestamptz + ca * interval '1 microsecond',
    CASE WHEN st = 'moved' OR en = 0 THEN NULL ELSE 'epoch'::timestamptz + en * interval '1 microsecond' END,
    CASE WHEN st = 'captured' THEN cp END, NULLIF(t, '')::uuid
FROM unnest($2::text[], $3::bigint[], $4::text[], $5::text[], $6::text[], $7::bigint[], $8::bigint[], $9::bigint[], $10::bigint[], $11::text[])
  AS u(id, a, c, st, d, e, ca, en, cp, t)
ON CONFLICT (id) DO UPDATE SET status = excluded.status, ended_at = excluded.ended_at, captured = excluded.captured, transaction_id = excluded.transaction_id`,
		org, holds.ids, holds.amounts, holds.currencies, holds.statuses, holds.descs, holds.expires, holds.created, holds.ended, holds.captured, holds.txIDs)
	batch.Queue(`INSERT INTO idempotency_keys (org_id, key, operation, request_hash, transaction_id, hold_id, created_at)
SELECT $1, k, op, h, NULLIF(t, '')::uuid, NULLIF(hd, '')::uuid, 'epoch'::timestamptz + ca * interval '1 microsecond'
FROM unnest($2::text[], $3::text[], $4::bytea[], $5::text[], $6::text[], $7::bigint[]) AS u(k, op, h, t, hd, ca)
ON CONFLICT DO NOTHING`, org, keys.keys, keys.ops, keys.hashes, keys.txIDs, keys.holdIDs, keys.created)
	batch.Queue(`DELETE FROM usage_daily WHERE org_id = $1`, org)
	batch.Queue(`INSERT INTO usage_daily (org_id, day, kind, item_id, currency, amount, count)
SELECT $1, d::date, k, i, c, a::numeric, n FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::bigint[]) AS u(d, k, i, c, a, n)`,
		org, usage.days, usage.kinds, usage.items, usage.currencies, usage.amounts, usage.counts)
	if err := tx.SendBatch(ctx, batch).Close(); err != nil {
		return fmt.Errorf("copying holds, keys and usage: %w", err)
	}
	return nil
}

type holdRows struct {
	ids, currencies, statuses, descs, txIDs    []string
	amounts, expires, created, ended, captured []int64
}

type keyRows struct {
	keys, ops, txIDs, holdIDs []string
	hashes                    [][]byte
	created                   []int64
}

type usageRows struct {
	days, kinds, items, currencies, amounts []string
	counts                                  []int64
}

// orgRows reads the organization's holds, idempotency keys and usage rows.
func (s *Store) orgRows(parent context.Context, org string) (holdRows, keyRows, usageRows, error) {
	ctx, cancel := s.deadline(parent)
	defer cancel()
	var h holdRows
	var k keyRows
	var u usageRows
	batch := &pgx.Batch{}
	batch.Queue(`SELECT id::text, amount, currency, status, description, (extract(epoch from expires_at) * 1000000)::bigint,
(extract(epoch from created_at) * 1000000)::bigint, coalesce((extract(epoch from ended_at) * 1000000)::bigint, 0), coalesce(captured, 0),
coalesce(transaction_id::text, '') FROM holds WHERE org_id = $1`, org).Query(func(rows pgx.Rows) error {
		for rows.Next() {
			var id, cur, st, desc, txID string
			var amount, exp, created, ended, captured int64
			if err := rows.Scan(&id, &amount, &cur, &st, &desc, &exp, &created, &ended, &captured, &txID); err != nil {
				return err
			}
			h.ids, h.amounts, h.currencies, h.statuses, h.descs = append(h.ids, id), append(h.amounts, amount), append(h.currencies, cur), append(h.statuses, st), append(h.descs, desc)
			h.expires, h.created, h.ended, h.captured, h.txIDs = append(h.expires, exp), append(h.created, created), append(h.ended, ended), append(h.captured, captured), append(h.txIDs, txID)
		}
		return rows.Err()
	})
	batch.Queue(`SELECT key, operation, request_hash, coalesce(transaction_id::text, ''), coalesce(hold_id::text, ''),
(extract(epoch from created_at) * 1000000)::bigint FROM idempotency_keys WHERE org_id = $1`, org).Query(func(rows pgx.Rows) error {
		for rows.Next() {
			var key, op, txID, holdID string
			var hash []byte
			var created int64
			if err := rows.Scan(&key, &op, &hash, &txID, &holdID, &created); err != nil {
				return err
			}
			k.keys, k.ops, k.hashes, k.txIDs, k.holdIDs, k.created = append(k.keys, key), append(k.ops, op), append(k.hashes, hash), append(k.txIDs, txID), append(k.holdIDs, holdID), append(k.created, created)
		}
		return rows.Err()
	})
	batch.Queue(`SELECT day::text, kind, item_id, currency, amount::text, count FROM usage_daily WHERE org_id = $1`, org).Query(func(rows pgx.Rows) error {
		for rows.Next() {
			var day, kind, item, cur, amount string
			var count int64
			if err := rows.Scan(&day, &kind, &item, &cur, &amount, &count); err != nil {
				return err
			}
			u.days, u.kinds, u.items, u.currencies, u.amounts, u.counts = append(u.days, day), append(u.kinds, kind), append(u.items, item), append(u.currencies, cur), append(u.amounts, amount), append(u.counts, count)
		}
		return rows.Err()
	})
	if err := s.pool.SendBatch(ctx, batch).Close(); err != nil {
		return holdRows{}, keyRows{}, usageRows{}, fail(parent, fmt.Errorf("reading the rows to move: %w", err))
	}
	return h, k, u, nil
}

// HoldOrg returns the organization of hold id on this shard (found false when it is not here):
// the router's way to find the shard of a Capture or Release, which name only the hold.
func (s *Store) HoldOrg(parent context.Context, id string) (string, bool, error) {
	if uuid.Validate(id) != nil {
		return "", false, nil
	}
	ctx, cancel := s.deadline(parent)
	defer cancel()
	var org string
	err := s.pool.QueryRow(ctx, `SELECT org_id FROM holds WHERE id = $1::uuid`, id).Scan(&org)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fail(parent, fmt.Errorf("finding hold: %w", err))
	}
	return org, true, nil
}

// Overrides reads the shard map's explicit overrides (the directory shard's).
func (s *Store) Overrides(parent context.Context) (map[string]string, error) {
	ctx, cancel := s.deadline(parent)
	defer cancel()
	rows, err := s.pool.Query(ctx, `SELECT org_id, shard FROM shard_overrides`)
	if err != nil {
		return nil, fail(parent, fmt.Errorf("reading shard overrides: %w", err))
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var org, sh string
		if err := rows.Scan(&org, &sh); err != nil {
			return nil, fail(parent, fmt.Errorf("reading shard overrides: %w", err))
		}
		out[org] = sh
	}
	return out, fail(parent, rows.Err())
}

// SetOverride puts org on shard sh in the overrides (the directory shard's); an empty sh removes
// the override (the organization lives where the hash puts it).
func (s *Store) SetOverride(parent context.Context, org, sh string) error {
	ctx, cancel := s.deadline(parent)
	defer cancel()
	var err error
	if sh == "" {
		_, err = s.pool.Exec(ctx, `DELETE FROM shard_overrides WHERE org_id = $1`, org)
	} else {
		_, err = s.pool.Exec(ctx, `INSERT INTO shard_overrides (org_id, shard) VALUES ($1, $2)
ON CONFLICT (org_id) DO UPDATE SET shard = excluded.shard, updated_at = now()`, org, sh)
	}
	if err != nil {
		return fail(parent, fmt.Errorf("setting the shard override of %s: %w", org, err))
	}
	return nil
}

// ResidentOrgs calls fn with each page (up to 10,000) of the organizations whose account lives on
// this shard (not moved away), in name order.
func (s *Store) ResidentOrgs(parent context.Context, fn func([]string) error) error {
	after := ""
	for {
		page, err := s.ids(parent, "listing resident organizations", `SELECT org_id FROM accounts
WHERE kind = 'org' AND moved_to IS NULL AND org_id > $1 ORDER BY org_id LIMIT 10000`, after)
		if err != nil || len(page) == 0 {
			return err
		}
		if err := fn(page); err != nil {
			return err
		}
		after = page[len(page)-1]
	}
}

// SetOverrides puts every organization of orgs on shard sh, leaving existing overrides alone.
func (s *Store) SetOverrides(parent context.Context, orgs []string, sh string) error {
	ctx, cancel := s.deadline(parent)
	defer cancel()
	if _, err := s.pool.Exec(ctx, `INSERT INTO shard_overrides (org_id, shard) SELECT o, $2 FROM unnest($1::text[]) AS o
ON CONFLICT (org_id) DO NOTHING`, orgs, sh); err != nil {
		return fail(parent, fmt.Errorf("pinning organizations: %w", err))
	}
	return nil
}
