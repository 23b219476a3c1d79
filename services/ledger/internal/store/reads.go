package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/tallyhq/tally/pkg/money"
	"github.com/tallyhq/tally/services/ledger/internal/ledger"
)

type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

// Account reads an organization's account; found is false for an organization never credited
// or debited.
func (s *Store) Account(ctx context.Context, orgID string) (acct ledger.Account, found bool, err error) {
	accts, founds, _, err := s.AccountsForCache(ctx, []string{orgID})
	if err != nil {
		return ledger.Account{}, false, err
	}
	return accts[0], founds[0], nil
}

// AccountsForCache reads the accounts of many organizations in one statement, with the
// balance-cache epoch read in the same statement (so never newer than the epoch current when the
// accounts were read): the accounts of orgIDs in their order (found false, and the default
// currency, for those never credited or debited). The epoch is 0 when none is found.
func (s *Store) AccountsForCache(parent context.Context, orgIDs []string) (accts []ledger.Account, found []bool, epoch int64, err error) {
	ctx, cancel := s.deadline(parent)
	defer cancel()
	// The project limits are read in the same statement (one snapshot with the account and the
	// epoch), only for the accounts that have some.
	rows, err := s.pool.Query(ctx, `SELECT `+accountColumns+`, (SELECT epoch FROM cache_epoch WHERE id = 1),
    CASE WHEN project_limit_count > 0 THEN (SELECT json_agg(json_build_object('p', p.project, 'l', p.monthly_limit,
        'm', extract(epoch from p.spend_month)::bigint, 's', p.month_spend)) FROM project_limits p WHERE p.org_id = accounts.org_id) END
FROM accounts WHERE kind = 'org' AND org_id = ANY($1::text[])`, orgIDs)
	if err != nil {
		return nil, nil, 0, fail(parent, fmt.Errorf("reading accounts: %w", err))
	}
	byOrg := make(map[string]ledger.Account, len(orgIDs))
	for rows.Next() {
		var projects []byte
		a, err := scanAccount(rows, &epoch, &projects)
		if err == nil {
			a.Projects, err = decodeProjectLimits(projects)
		}
		if err != nil {
			rows.Close()
			return nil, nil, 0, fail(parent, fmt.Errorf("scanning account: %w", err))
		}
		byOrg[a.OrgID] = a
	}
	if err := rows.Err(); err != nil {
		return nil, nil, 0, fail(parent, fmt.Errorf("reading accounts: %w", err))
	}
	accts, found = make([]ledger.Account, len(orgIDs)), make([]bool, len(orgIDs))
	for i, org := range orgIDs {
		a, ok := byOrg[org]
		if !ok {
			a = ledger.Account{OrgID: org, Currency: s.cfg.DefaultCurrency}
		}
		accts[i], found[i] = a, ok
	}
	return accts, found, epoch, nil
}

// ListTransactions returns up to limit transactions of org with seq below beforeSeq (0 = newest),
// newest first, with their postings; only those of kind when it is set.
func (s *Store) ListTransactions(parent context.Context, orgID string, limit int, beforeSeq int64, kind ledger.TxKind) ([]*ledger.Transaction, error) {
	if beforeSeq <= 0 {
		beforeSeq = 1<<63 - 1
	}
	ctx, cancel := s.deadline(parent)
	defer cancel()
	where, args := `WHERE t.org_id = $1 AND t.seq < $2 ORDER BY t.seq DESC LIMIT $3`, []any{orgID, beforeSeq, limit}
	switch kind {
	case "":
	case ledger.TxDebit, ledger.TxCapture:
		// Most of an organization's transactions: its newest-first index finds them densely.
		where, args = `WHERE t.org_id = $1 AND t.seq < $2 AND t.kind = $4 ORDER BY t.seq DESC LIMIT $3`, append(args, string(kind))
	default:
		// The rare kinds have their own partial index (see its migration); the repeated
		// predicate lets the planner use it whatever the parameter.
		where, args = `WHERE t.org_id = $1 AND t.seq < $2 AND t.kind = $4 AND t.kind NOT IN ('debit', 'capture')
ORDER BY t.seq DESC LIMIT $3`, append(args, string(kind))
	}
	txs, err := loadTransactions(ctx, s.pool, where, args...)
	return txs, fail(parent, err)
}

func loadTransactions(ctx context.Context, q querier, where string, args ...any) ([]*ledger.Transaction, error) {
	rows, err := q.Query(ctx, `SELECT t.id::text, t.seq, t.org_id, t.kind, t.amount, t.balance_after, t.currency, t.description,
t.metadata, t.reason, t.reference, t.idempotency_key, t.actor, coalesce(t.hold_id::text, ''), t.created_at, coalesce(t.pricing::text, '')
FROM transactions t `+where, args...)
	if err != nil {
		return nil, fmt.Errorf("listing transactions: %w", err)
	}
	var txs []*ledger.Transaction
	byID := map[string]*ledger.Transaction{}
	for rows.Next() {
		var t ledger.Transaction
		var kind string
		var amount, after int64
		var meta []byte
		var pricing string
		if err := rows.Scan(&t.ID, &t.Seq, &t.OrgID, &kind, &amount, &after, &t.Currency, &t.Description, &meta,
			&t.Reason, &t.Reference, &t.IdempotencyKey, &t.Actor, &t.HoldID, &t.CreatedAt, &pricing); err != nil {
			rows.Close()
			return nil, fmt.Errorf("scanning transaction: %w", err)
		}
		t.Kind, t.Amount, t.BalanceAfter = ledger.TxKind(kind), money.Nanos(amount), money.Nanos(after)
		t.CreatedAt = t.CreatedAt.UTC()
		if err := json.Unmarshal(meta, &t.Metadata); err != nil {
			rows.Close()
			return nil, fmt.Errorf("decoding metadata: %w", err)
		}
		if pricing != "" {
			t.Pricing = &ledger.PricedUsage{}
			if err := json.Unmarshal([]byte(pricing), t.Pricing); err != nil {
				rows.Close()
				return nil, fmt.Errorf("decoding pricing: %w", err)
			}
		}
		txs = append(txs, &t)
		byID[t.ID] = &t
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("listing transactions: %w", err)
	}
	if len(txs) == 0 {
		return txs, nil
	}
	ids := make([]string, 0, len(txs))
	for _, t := range txs {
		ids = append(ids, t.ID)
	}
	entries, err := loadPostings(ctx, q, byID, ids)
	if err != nil {
		return nil, err
	}
	if err := loadCounterLegs(ctx, q, byID, entries); err != nil {
		return nil, err
	}
	return txs, nil
}

// loadPostings adds the postings of the transactions ids to them (byID) and returns the journal
// entries of those whose counter-leg is shared with their batch (entries.go), by transaction id.
func loadPostings(ctx context.Context, q querier, byID map[string]*ledger.Transaction, ids []string) (map[string]string, error) {
	prow, err := q.Query(ctx, `SELECT p.transaction_id::text, p.account_id, a.name, p.amount, coalesce(p.entry_id::text, '') FROM postings p JOIN accounts a ON a.id = p.account_id
WHERE p.transaction_id = ANY($1::text[]::uuid[]) ORDER BY p.transaction_id, p.amount`, ids)
	if err != nil {
		return nil, fmt.Errorf("listing postings: %w", err)
	}
	defer prow.Close()
	var entries map[string]string
	for prow.Next() {
		var txID, entry string
		var p ledger.Posting
		var amount int64
		if err := prow.Scan(&txID, &p.AccountID, &p.Account, &amount, &entry); err != nil {
			return nil, fmt.Errorf("scanning posting: %w", err)
		}
		p.Amount = money.Nanos(amount)
		if t := byID[txID]; t != nil {
			t.Postings = append(t.Postings, p)
		}
		if entry != "" {
			if entries == nil {
				entries = map[string]string{}
			}
			entries[txID] = entry
		}
	}
	if err := prow.Err(); err != nil {
		return nil, fmt.Errorf("listing postings: %w", err)
	}
	return entries, nil
}

// Events returns up to limit outbox events after seq, in sequence order, optionally of one org:
// only events below the horizon (seqHorizon), so a reader resuming after the last one it got
// never misses one committed later. An event waits there until every transaction that took
// its id before the event's own has ended.
func (s *Store) Events(parent context.Context, afterSeq int64, orgID string, limit int) ([]ledger.Event, error) {
	ctx, cancel := s.deadline(parent)
	defer cancel()
	events, err := s.events(ctx, afterSeq, orgID, limit)
	return events, fail(parent, err)
}

func (s *Store) events(ctx context.Context, afterSeq int64, orgID string, limit int) ([]ledger.Event, error) {
	rows, err := s.pool.Query(ctx, `SELECT seq, org_id, kind, coalesce(transaction_id::text, ''), coalesce(hold_id::text, ''), amount, balance, available,
currency, coalesce((extract(epoch from expires_at) * 1000000)::bigint, 0), (extract(epoch from occurred_at) * 1000000)::bigint,
coalesce(credit_source, ''), coalesce(spend_limit, 0)
FROM events WHERE seq > $1 AND seq < `+seqHorizon+` AND ($2 = '' OR org_id = $2) ORDER BY seq LIMIT $3`, afterSeq, orgID, limit)
	if err != nil {
		return nil, fmt.Errorf("reading events: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (ledger.Event, error) {
		var e ledger.Event
		var kind, source string
		var amount, bal, avail, exp, occ, limit int64
		err := r.Scan(&e.Seq, &e.OrgID, &kind, &e.TransactionID, &e.HoldID, &amount, &bal, &avail, &e.Currency, &exp, &occ, &source, &limit)
		e.SpendLimit = money.Nanos(limit)
		e.CreditSource = ledger.CreditSource(source)
		e.Kind, e.Amount, e.Balance, e.Available = ledger.EventKind(kind), money.Nanos(amount), money.Nanos(bal), money.Nanos(avail)
		e.ExpiresAt, e.OccurredAt = fromMicros(exp), fromMicros(occ)
		return e, err
	})
}

// NewestEventTime returns when the newest event a watcher is sent occurred (a move's marker is
// not one; zero when there is none): one step down the primary key from the head.
func (s *Store) NewestEventTime(parent context.Context) (time.Time, error) {
	ctx, cancel := s.deadline(parent)
	defer cancel()
	var us int64
	err := s.pool.QueryRow(ctx, `SELECT coalesce((SELECT (extract(epoch from occurred_at) * 1000000)::bigint FROM events
WHERE kind <> $1 ORDER BY seq DESC LIMIT 1), 0)`, string(ledger.EventMovedIn)).Scan(&us)
	if err != nil {
		return time.Time{}, fail(parent, fmt.Errorf("reading the newest event: %w", err))
	}
	return fromMicros(us), nil
}

// DueHolds lists active holds whose TTL has passed.
func (s *Store) DueHolds(parent context.Context, now time.Time, limit int) ([]string, error) {
	return s.ids(parent, "listing due holds", `SELECT id::text FROM holds WHERE status = 'active' AND expires_at <= $1 ORDER BY expires_at LIMIT $2`, now, limit)
}

// DueExpiries lists organizations whose credits are past their validity.
func (s *Store) DueExpiries(parent context.Context, now time.Time, limit int) ([]string, error) {
	return s.ids(parent, "listing due expiries", `SELECT org_id FROM accounts WHERE kind = 'org' AND expires_at <= $1 ORDER BY expires_at LIMIT $2`, now, limit)
}

func (s *Store) ids(parent context.Context, what, sql string, args ...any) ([]string, error) {
	ctx, cancel := s.deadline(parent)
	defer cancel()
	rows, err := s.pool.Query(ctx, sql, args...)
	if err != nil {
		return nil, fail(parent, fmt.Errorf("%s: %w", what, err))
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fail(parent, fmt.Errorf("%s: %w", what, err))
	}
	return ids, nil
}
