// Package store persists the ledger in PostgreSQL. Every write goes through Apply, which runs a
// batch of requests in one database transaction: lock the accounts (in id order), load holds and
// idempotency keys, apply the ledger rules in memory, then write transactions, postings, holds,
// balances and outbox events and commit once.
package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tallyhq/tally/pkg/config"
	"github.com/tallyhq/tally/pkg/money"
	"github.com/tallyhq/tally/pkg/pg"
	"github.com/tallyhq/tally/services/ledger/internal/ledger"
)

// Config configures a Store.
type Config struct {
	Validity        config.Period
	DefaultCurrency string
	// PlatformShards spreads each platform account over this many rows (default 16).
	PlatformShards int
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// Timeout bounds every call to PostgreSQL, a whole batch transaction included (default 5s).
	Timeout time.Duration
}

// ErrOutcomeUnknown marks a batch whose COMMIT was sent but whose answer never came: it may or
// may not have committed. Running the same requests again resolves it: their idempotency keys
// replay whatever did commit, and the ledger's own key-less requests re-check under lock.
var ErrOutcomeUnknown = errors.New("the outcome of the ledger batch is unknown")

// Store is the PostgreSQL ledger.
type Store struct {
	pool   *pgxpool.Pool
	cfg    Config
	mu     sync.Mutex
	idByNm map[string]int64 // platform account ids by name
	// knownOrgs remembers organizations whose account exists (accounts are never deleted), so
	// batches skip the account insert for them.
	knownOrgs sync.Map
}

// New returns a Store over pool, whose search_path is the ledger schema.
func New(pool *pgxpool.Pool, cfg Config) (*Store, error) {
	if pool == nil {
		return nil, errors.New("store: pool is required")
	}
	if cfg.DefaultCurrency == "" {
		cfg.DefaultCurrency = "USD"
	}
	if cfg.PlatformShards <= 0 {
		cfg.PlatformShards = 16
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Validity == (config.Period{}) {
		cfg.Validity = config.Period{Months: 3}
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 5 * time.Second
	}
	return &Store{pool: pool, cfg: cfg, idByNm: map[string]int64{}}, nil
}

// Outcome is the result of one request of a batch.
type Outcome struct {
	Result ledger.Result
	Err    error
}

// Applied is what a committed batch did.
type Applied struct {
	Outcomes []Outcome
	// Accounts are the states, as committed, of every account the batch locked: the ones it
	// changed and the ones it only replayed or refused, so any request refreshes the cache.
	Accounts []ledger.Account
	// CacheEpoch is the balance-cache epoch read in the batch transaction before its accounts
	// were locked: never newer than the epoch current when Accounts were committed.
	CacheEpoch int64
	Events     int
}

// deadline bounds one call to PostgreSQL.
func (s *Store) deadline(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, s.cfg.Timeout)
}

// fail classifies err from a call made under parent: the caller's own cancellation or deadline
// stays what it is; an unreachable, restarting or timed-out database becomes ledger.ErrUnavailable.
func fail(parent context.Context, err error) error {
	if err == nil || errors.Is(err, ledger.ErrUnavailable) {
		return err
	}
	if perr := parent.Err(); perr != nil {
		return fmt.Errorf("%w: %w", perr, err)
	}
	if pg.IsUnavailable(err) {
		return fmt.Errorf("%w: %w", ledger.ErrUnavailable, err)
	}
	return err
}

func newID() string { return uuid.Must(uuid.NewV7()).String() }

// Apply runs reqs in one database transaction and commits it. A request refused by the ledger
// rules gets its own error in Outcomes and changes nothing; an error return means nothing at all
// was committed. The transaction takes two round trips: BEGIN and the locking reads pipelined in
// one, the writes and COMMIT in the other.
//
// A failure before COMMIT was sent leaves nothing behind. A lost answer to the COMMIT is
// ErrOutcomeUnknown (and ledger.ErrUnavailable): the batch may have committed.
func (s *Store) Apply(parent context.Context, reqs []*ledger.Request) (Applied, error) {
	ctx, cancel := s.deadline(parent)
	defer cancel()
	now := s.cfg.Now().UTC().Truncate(time.Microsecond)
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return Applied{}, fail(parent, fmt.Errorf("acquiring connection: %w", err))
	}
	defer conn.Release()
	committed := false
	defer func() {
		if !committed {
			// Ends the transaction whatever state it is in; a connection left in a transaction is
			// closed by the pool on release anyway.
			rctx, cancel := s.deadline(context.WithoutCancel(ctx))
			defer cancel()
			_, _ = conn.Exec(rctx, "ROLLBACK")
		}
	}()

	lk, err := s.lock(ctx, conn.Conn(), reqs)
	if err != nil {
		return Applied{}, fail(parent, err)
	}
	accounts, holds, existing := lk.accounts, lk.holds, lk.existing
	for _, r := range reqs {
		if r.HoldID != "" {
			r.OrgID = "" // unknown hold: the batch answers ErrHoldNotFound
			if h, ok := holds[r.HoldID]; ok {
				r.OrgID = h.OrgID
			}
		}
	}
	shard := rand.IntN(s.cfg.PlatformShards)
	b := ledger.NewBatch(ledger.BatchConfig{
		Now:      now,
		Validity: s.cfg.Validity,
		PlatformAccount: func(kind, currency string) string {
			return fmt.Sprintf("platform:%s:%s:%02d", kind, currency, shard)
		},
		NewID:    newID,
		Accounts: accounts,
		Holds:    holds,
		Existing: existing,
	})
	out := Applied{Outcomes: make([]Outcome, len(reqs)), CacheEpoch: lk.epoch}
	for i, r := range reqs {
		res, err := b.Apply(r)
		out.Outcomes[i] = Outcome{Result: res, Err: err}
	}
	// The locked accounts end in the state this transaction leaves them in (the batch changes
	// them in place), which is what PostgreSQL holds once it commits or rolls back.
	lockedAccounts := func() []ledger.Account {
		accts := make([]ledger.Account, 0, len(accounts))
		for _, a := range accounts {
			accts = append(accts, *a)
		}
		return accts
	}
	if len(b.Touched) == 0 && len(b.Keys) == 0 {
		// Nothing to write: replays and refusals only (the deferred ROLLBACK ends it).
		out.Accounts = lockedAccounts()
		return out, nil
	}
	if sent, err := s.write(ctx, conn.Conn(), b); err != nil {
		err = fail(parent, err)
		if sent && errors.Is(err, ledger.ErrUnavailable) && !pgconn.SafeToRetry(err) {
			err = fmt.Errorf("%w: %w", ErrOutcomeUnknown, err)
		}
		return Applied{}, err
	}
	committed = true
	out.Accounts = lockedAccounts()
	out.Events = len(b.Events)
	return out, nil
}

// accountColumns reads an organization's account. balance is numeric (platform rows may exceed
// int64); an organization's row is kept within int64 by a CHECK constraint, so the cast is exact.
const accountColumns = `id, org_id, currency, balance::bigint, held, coalesce((extract(epoch from expires_at) * 1000000)::bigint, 0), version`

func scanAccount(row pgx.Row) (ledger.Account, error) {
	var a ledger.Account
	var bal, held, expMicros int64
	if err := row.Scan(&a.ID, &a.OrgID, &a.Currency, &bal, &held, &expMicros, &a.Version); err != nil {
		return ledger.Account{}, err
	}
	a.Balance, a.Held = money.Nanos(bal), money.Nanos(held)
	a.ExpiresAt = fromMicros(expMicros)
	return a, nil
}

func fromMicros(us int64) time.Time {
	if us == 0 {
		return time.Time{}
	}
	return time.UnixMicro(us).UTC()
}

func toMicros(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMicro()
}

// opensAccount says whether a request may create the organization's account.
func opensAccount(op ledger.Operation) bool {
	return op == ledger.OpCredit || op == ledger.OpDebit || op == ledger.OpAdjust
}

// locked is what a batch transaction read under its locks.
type locked struct {
	accounts map[string]*ledger.Account
	holds    map[string]*ledger.Hold
	existing map[ledger.IdemKey]ledger.Replay
	epoch    int64
}

func (s *Store) lock(ctx context.Context, conn *pgx.Conn, reqs []*ledger.Request) (locked, error) {
	var orgs, newOrgs, newCurrencies, holdIDs, keys, keyOrgs, keyHolds []string
	seenOrg, seenNew := map[string]bool{}, map[string]bool{}
	for _, r := range reqs {
		if r.HoldID != "" {
			holdIDs = append(holdIDs, r.HoldID)
		}
		if r.IdempotencyKey != "" {
			keys = append(keys, r.IdempotencyKey)
			if r.HoldID != "" {
				keyOrgs, keyHolds = append(keyOrgs, ""), append(keyHolds, r.HoldID)
			} else {
				keyOrgs, keyHolds = append(keyOrgs, r.OrgID), append(keyHolds, "")
			}
		}
		if r.OrgID == "" || r.HoldID != "" {
			continue // requests naming a hold act on the hold's organization
		}
		if !seenOrg[r.OrgID] {
			seenOrg[r.OrgID] = true
			orgs = append(orgs, r.OrgID)
		}
		if _, known := s.knownOrgs.Load(r.OrgID); !known && opensAccount(r.Op) && !seenNew[r.OrgID] {
			seenNew[r.OrgID] = true
			cur := r.Currency
			if cur == "" {
				cur = s.cfg.DefaultCurrency
			}
			newOrgs, newCurrencies = append(newOrgs, r.OrgID), append(newCurrencies, cur)
		}
	}
	accounts := map[string]*ledger.Account{}
	holds := map[string]*ledger.Hold{}
	existing := map[ledger.IdemKey]ledger.Replay{}
	if holdIDs == nil {
		holdIDs = []string{}
	}
	if len(newOrgs) > 0 {
		// Opened in autocommit, before the batch transaction, so the rows are committed and
		// visible to the locking read whatever happens to the batch; an account that stays empty
		// because its first request was refused is harmless.
		if _, err := s.pool.Exec(ctx, `INSERT INTO accounts (name, kind, org_id, currency)
SELECT 'org:' || o, 'org', o, c FROM unnest($1::text[], $2::text[]) AS t(o, c)
ON CONFLICT DO NOTHING`, newOrgs, newCurrencies); err != nil {
			return locked{}, fmt.Errorf("opening accounts: %w", err)
		}
	}
	var epoch int64
	batch := &pgx.Batch{}
	batch.Queue("BEGIN")
	// Read before the accounts: the epoch a cache entry of their state may be stamped with.
	batch.Queue(`SELECT epoch FROM cache_epoch WHERE id = 1`).QueryRow(func(row pgx.Row) error {
		if err := row.Scan(&epoch); err != nil {
			return fmt.Errorf("reading the cache epoch: %w", err)
		}
		return nil
	})
	// Accounts are locked in id order, so concurrent batches never deadlock; holds after accounts.
	// One "= ANY" over the organizations named and those of the holds named keeps it an index scan.
	batch.Queue(`SELECT `+accountColumns+` FROM accounts WHERE kind = 'org'
AND org_id = ANY($1::text[] || ARRAY(SELECT h.org_id FROM holds h WHERE h.id = ANY($2::text[]::uuid[])))
ORDER BY id FOR UPDATE`, orgs, holdIDs).Query(func(rows pgx.Rows) error {
		for rows.Next() {
			a, err := scanAccount(rows)
			if err != nil {
				return fmt.Errorf("scanning account: %w", err)
			}
			accounts[a.OrgID] = &a
			s.knownOrgs.Store(a.OrgID, struct{}{})
		}
		return rows.Err()
	})
	if len(holdIDs) > 0 {
		batch.Queue(`SELECT `+holdColumns+` FROM holds WHERE id = ANY($1::text[]::uuid[]) ORDER BY id FOR UPDATE`, holdIDs).Query(func(rows pgx.Rows) error {
			for rows.Next() {
				h, err := scanHold(rows)
				if err != nil {
					return fmt.Errorf("scanning hold: %w", err)
				}
				holds[h.ID] = h
			}
			return rows.Err()
		})
	}
	var replayTx, replayHolds []string
	if len(keys) > 0 {
		// Looked up by primary key (org_id, key); a request naming a hold uses the hold's org.
		batch.Queue(`SELECT k.org_id, k.key, k.operation, k.request_hash, coalesce(k.transaction_id::text, ''), coalesce(k.hold_id::text, '')
FROM idempotency_keys k
WHERE (k.org_id, k.key) IN (SELECT u.o, u.k FROM unnest($1::text[], $2::text[]) AS u(o, k) WHERE u.o <> ''
    UNION ALL SELECT h.org_id, u.k FROM unnest($2::text[], $3::text[]) AS u(k, hid) JOIN holds h ON u.hid <> '' AND h.id = u.hid::uuid)`, keyOrgs, keys, keyHolds).Query(func(rows pgx.Rows) error {
			for rows.Next() {
				var rec ledger.IdempotencyRecord
				var op string
				if err := rows.Scan(&rec.OrgID, &rec.Key, &op, &rec.RequestHash, &rec.TransactionID, &rec.HoldID); err != nil {
					return fmt.Errorf("scanning idempotency key: %w", err)
				}
				rec.Operation = ledger.Operation(op)
				existing[ledger.IdemKey{OrgID: rec.OrgID, Key: rec.Key}] = ledger.Replay{Record: rec}
				if rec.TransactionID != "" {
					replayTx = append(replayTx, rec.TransactionID)
				}
				if rec.HoldID != "" {
					replayHolds = append(replayHolds, rec.HoldID)
				}
			}
			return rows.Err()
		})
	}
	if err := conn.SendBatch(ctx, batch).Close(); err != nil {
		return locked{}, fmt.Errorf("locking accounts: %w", err)
	}
	if len(replayTx)+len(replayHolds) > 0 {
		if err := loadReplays(ctx, conn, existing, replayTx, replayHolds); err != nil {
			return locked{}, err
		}
	}
	return locked{accounts: accounts, holds: holds, existing: existing, epoch: epoch}, nil
}

func loadReplays(ctx context.Context, q querier, existing map[ledger.IdemKey]ledger.Replay, txIDs, holdIDs []string) error {
	txs, err := loadTransactions(ctx, q, `WHERE t.id = ANY($1::text[]::uuid[])`, txIDs)
	if err != nil {
		return err
	}
	byTx := map[string]*ledger.Transaction{}
	for _, t := range txs {
		byTx[t.ID] = t
	}
	byHold := map[string]*ledger.Hold{}
	if len(holdIDs) > 0 {
		rows, err := q.Query(ctx, `SELECT `+holdColumns+` FROM holds WHERE id = ANY($1::text[]::uuid[])`, holdIDs)
		if err != nil {
			return fmt.Errorf("loading holds: %w", err)
		}
		for rows.Next() {
			h, err := scanHold(rows)
			if err != nil {
				rows.Close()
				return fmt.Errorf("scanning hold: %w", err)
			}
			byHold[h.ID] = h
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("loading holds: %w", err)
		}
	}
	for k, r := range existing {
		r.Transaction = byTx[r.Record.TransactionID]
		r.Hold = byHold[r.Record.HoldID]
		existing[k] = r
	}
	return nil
}

const holdColumns = `id::text, org_id, amount, currency, status, description,
(extract(epoch from expires_at) * 1000000)::bigint, (extract(epoch from created_at) * 1000000)::bigint,
coalesce((extract(epoch from ended_at) * 1000000)::bigint, 0), coalesce(captured, 0), coalesce(transaction_id::text, '')`

func scanHold(row pgx.Row) (*ledger.Hold, error) {
	var h ledger.Hold
	var amount, captured int64
	var status string
	var exp, created, ended int64
	if err := row.Scan(&h.ID, &h.OrgID, &amount, &h.Currency, &status, &h.Description, &exp, &created, &ended, &captured, &h.TransactionID); err != nil {
		return nil, err
	}
	h.Amount, h.Captured, h.Status = money.Nanos(amount), money.Nanos(captured), ledger.HoldStatus(status)
	h.ExpiresAt, h.CreatedAt, h.EndedAt = fromMicros(exp), fromMicros(created), fromMicros(ended)
	return &h, nil
}

func (s *Store) platformIDs(ctx context.Context, names []string) (map[string]int64, error) {
	s.mu.Lock()
	var missing []string
	ids := make(map[string]int64, len(names))
	for _, n := range names {
		if id, ok := s.idByNm[n]; ok {
			ids[n] = id
		} else {
			missing = append(missing, n)
		}
	}
	s.mu.Unlock()
	if len(missing) == 0 {
		return ids, nil
	}
	// Created outside the batch transaction (autocommit) so that no batch waits on another's insert.
	rows, err := s.pool.Query(ctx, `WITH wanted AS (
    SELECT n, split_part(n, ':', 2) AS kind, split_part(n, ':', 3) AS currency FROM unnest($1::text[]) AS n
), ins AS (
    INSERT INTO accounts (name, kind, currency) SELECT n, kind, currency FROM wanted ON CONFLICT (name) DO NOTHING RETURNING id, name
)
SELECT id, name FROM ins UNION ALL SELECT a.id, a.name FROM accounts a JOIN wanted w ON a.name = w.n`, missing)
	if err != nil {
		return nil, fmt.Errorf("ensuring platform accounts: %w", err)
	}
	found, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (struct {
		id   int64
		name string
	}, error) {
		var v struct {
			id   int64
			name string
		}
		err := r.Scan(&v.id, &v.name)
		return v, err
	})
	if err != nil {
		return nil, fmt.Errorf("ensuring platform accounts: %w", err)
	}
	got := map[string]int64{}
	for _, v := range found {
		got[v.name] = v.id
	}
	// A name inserted concurrently by another replica or worker is invisible to the statement
	// above (its snapshot predates that commit, the insert waited and did nothing): read again.
	var late []string
	for _, n := range missing {
		if _, ok := got[n]; !ok {
			late = append(late, n)
		}
	}
	if len(late) > 0 {
		rows, err := s.pool.Query(ctx, `SELECT id, name FROM accounts WHERE name = ANY($1::text[])`, late)
		if err != nil {
			return nil, fmt.Errorf("reading platform accounts: %w", err)
		}
		for rows.Next() {
			var id int64
			var name string
			if err := rows.Scan(&id, &name); err != nil {
				rows.Close()
				return nil, fmt.Errorf("reading platform accounts: %w", err)
			}
			got[name] = id
		}
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("reading platform accounts: %w", err)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, n := range missing {
		id, ok := got[n]
		if !ok {
			return nil, fmt.Errorf("platform account %s could not be created", n)
		}
		s.idByNm[n], ids[n] = id, id
	}
	return ids, nil
}

// write sends the batch's rows and its COMMIT; sent says whether the COMMIT went out (before
// that, a failure certainly committed nothing).
func (s *Store) write(ctx context.Context, conn *pgx.Conn, b *ledger.Batch) (sent bool, err error) {
	var names []string
	seen := map[string]bool{}
	for _, t := range b.Transactions {
		for _, p := range t.Postings {
			if p.AccountID == 0 && !seen[p.Account] {
				seen[p.Account] = true
				names = append(names, p.Account)
			}
		}
	}
	ids, err := s.platformIDs(ctx, names)
	if err != nil {
		return false, err
	}
	batch := &pgx.Batch{}
	if len(b.Keys) > 0 {
		var orgs, keys, ops, txIDs, holdIDs []string
		var hashes [][]byte
		for _, k := range b.Keys {
			orgs, keys, ops = append(orgs, k.OrgID), append(keys, k.Key), append(ops, string(k.Operation))
			hashes, txIDs, holdIDs = append(hashes, k.RequestHash), append(txIDs, k.TransactionID), append(holdIDs, k.HoldID)
		}
		batch.Queue(`INSERT INTO idempotency_keys (org_id, key, operation, request_hash, transaction_id, hold_id)
SELECT o, k, op, h, NULLIF(t, '')::uuid, NULLIF(hd, '')::uuid FROM unnest($1::text[], $2::text[], $3::text[], $4::bytea[], $5::text[], $6::text[]) AS u(o, k, op, h, t, hd)`,
			orgs, keys, ops, hashes, txIDs, holdIDs)
	}
	if len(b.Transactions) > 0 {
		n := len(b.Transactions)
		txIDs, orgs, kinds, currencies := make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		descs, metas, reasons, refs, keys, actors, holdIDs, pricings := make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		amounts, after, created := make([]int64, n), make([]int64, n), make([]int64, n)
		var pTx []string
		var pAcct, pAmt, platAcct, platAmt []int64
		for i, t := range b.Transactions {
			meta, err := json.Marshal(t.Metadata)
			if err != nil {
				return false, fmt.Errorf("encoding metadata: %w", err)
			}
			if t.Metadata == nil {
				meta = []byte("{}")
			}
			txIDs[i], orgs[i], kinds[i], currencies[i] = t.ID, t.OrgID, string(t.Kind), t.Currency
			descs[i], metas[i], reasons[i], refs[i], keys[i], actors[i], holdIDs[i] = t.Description, string(meta), t.Reason, t.Reference, t.IdempotencyKey, t.Actor, t.HoldID
			amounts[i], after[i], created[i] = int64(t.Amount), int64(t.BalanceAfter), toMicros(t.CreatedAt)
			if t.Pricing != nil {
				p, err := json.Marshal(t.Pricing)
				if err != nil {
					return false, fmt.Errorf("encoding pricing: %w", err)
				}
				pricings[i] = string(p)
			}
			for j := range t.Postings {
				p := &t.Postings[j]
				if p.AccountID == 0 {
					p.AccountID = ids[p.Account]
					platAcct, platAmt = append(platAcct, p.AccountID), append(platAmt, int64(p.Amount))
				}
				pTx, pAcct, pAmt = append(pTx, t.ID), append(pAcct, p.AccountID), append(pAmt, int64(p.Amount))
			}
		}
		batch.Queue(`INSERT INTO transactions (id, org_id, kind, amount, balance_after, currency, description, metadata, reason, reference, idempotency_key, actor, hold_id, created_at, pricing)
SELECT id::uuid, o, k, a, ba, c, d, m::jsonb, r, ref, ik, ac, NULLIF(h, '')::uuid, 'epoch'::timestamptz + ca * interval '1 microsecond', NULLIF(p, '')::json
FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::bigint[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::text[], $13::text[], $14::bigint[], $15::text[])
  WITH ORDINALITY AS u(id, o, k, a, ba, c, d, m, r, ref, ik, ac, h, ca, p, n)
ORDER BY u.n`, txIDs, orgs, kinds, amounts, after, currencies, descs, metas, reasons, refs, keys, actors, holdIDs, created, pricings)
		batch.Queue(`INSERT INTO postings (transaction_id, account_id, amount)
SELECT t::uuid, a, v FROM unnest($1::text[], $2::bigint[], $3::bigint[]) AS u(t, a, v)`, pTx, pAcct, pAmt)
		if len(platAcct) > 0 {
			// Summed in SQL as numeric, exactly: a batch's postings to one platform row may add up
			// beyond int64, and so may the row's balance (see the migration that made it numeric).
			batch.Queue(`UPDATE accounts SET balance = accounts.balance + u.d, version = accounts.version + 1
FROM (SELECT p.id, sum(p.v) AS d FROM unnest($1::bigint[], $2::bigint[]) AS p(id, v) GROUP BY p.id HAVING sum(p.v) <> 0) AS u
WHERE accounts.id = u.id`, platAcct, platAmt)
		}
	}
	if len(b.NewHolds) > 0 {
		var ids, orgs, currencies, descs []string
		var amounts, exps, created []int64
		for _, h := range b.NewHolds {
			ids, orgs, currencies, descs = append(ids, h.ID), append(orgs, h.OrgID), append(currencies, h.Currency), append(descs, h.Description)
			amounts, exps, created = append(amounts, int64(h.Amount)), append(exps, toMicros(h.ExpiresAt)), append(created, toMicros(h.CreatedAt))
		}
		batch.Queue(`INSERT INTO holds (id, org_id, amount, currency, status, description, expires_at, created_at)
SELECT id::uuid, o, a, c, 'active', d, 'epoch'::timestamptz + e * interval '1 microsecond', 'epoch'::timestamptz + ca * interval '1 microsecond'
FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[], $5::text[], $6::bigint[], $7::bigint[]) AS u(id, o, a, c, d, e, ca)`,
			ids, orgs, amounts, currencies, descs, exps, created)
	}
	if len(b.ChangedHolds) > 0 {
		var ids, statuses, txIDs []string
		var ended, captured []int64
		for _, h := range b.ChangedHolds {
			ids, statuses, txIDs = append(ids, h.ID), append(statuses, string(h.Status)), append(txIDs, h.TransactionID)
			ended, captured = append(ended, toMicros(h.EndedAt)), append(captured, int64(h.Captured))
		}
		// New holds ended in the same batch are inserted above first, so this update finds them.
		batch.Queue(`UPDATE holds SET status = u.s, ended_at = 'epoch'::timestamptz + u.e * interval '1 microsecond',
    captured = CASE WHEN u.s = 'captured' THEN u.c END, transaction_id = NULLIF(u.t, '')::uuid
FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[], $5::text[]) AS u(id, s, e, c, t) WHERE holds.id = u.id::uuid`,
			ids, statuses, ended, captured, txIDs)
	}
	if len(b.Touched) > 0 {
		var ids, bals, helds, exps, versions []int64
		for _, org := range b.Touched {
			a, _ := b.Account(org)
			ids, bals, helds = append(ids, a.ID), append(bals, int64(a.Balance)), append(helds, int64(a.Held))
			exps, versions = append(exps, toMicros(a.ExpiresAt)), append(versions, a.Version)
		}
		batch.Queue(`UPDATE accounts SET balance = u.b, held = u.h, version = u.v,
    expires_at = CASE WHEN u.e = 0 THEN NULL ELSE 'epoch'::timestamptz + u.e * interval '1 microsecond' END
FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::bigint[], $5::bigint[]) AS u(id, b, h, e, v) WHERE accounts.id = u.id`,
			ids, bals, helds, exps, versions)
	}
	if len(b.Events) > 0 {
		n := len(b.Events)
		orgs, kinds, txIDs, holdIDs, currencies, sources := make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		amounts, bals, avails, exps, occurred := make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n)
		for i, e := range b.Events {
			orgs[i], kinds[i], txIDs[i], holdIDs[i], currencies[i], sources[i] = e.OrgID, string(e.Kind), e.TransactionID, e.HoldID, e.Currency, string(e.CreditSource)
			amounts[i], bals[i], avails[i], exps[i], occurred[i] = int64(e.Amount), int64(e.Balance), int64(e.Available), toMicros(e.ExpiresAt), toMicros(e.OccurredAt)
		}
		// Last statement before commit: the event_sequence row lock is held only until commit,
		// so sequence numbers are handed out in commit order.
		batch.Queue(`WITH s AS (UPDATE event_sequence SET last = last + $1 WHERE id = 1 RETURNING last)
INSERT INTO events (seq, org_id, kind, transaction_id, hold_id, amount, balance, available, currency, expires_at, occurred_at, credit_source)
SELECT s.last - $1 + u.n, u.o, u.k, NULLIF(u.t, '')::uuid, NULLIF(u.h, '')::uuid, u.a, u.b, u.av, u.c,
    CASE WHEN u.e = 0 THEN NULL ELSE 'epoch'::timestamptz + u.e * interval '1 microsecond' END,
    'epoch'::timestamptz + u.oc * interval '1 microsecond', NULLIF(u.src, '')
FROM s, unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::bigint[], $7::bigint[], $8::bigint[], $9::text[], $10::bigint[], $11::bigint[], $12::text[])
  WITH ORDINALITY AS u(o, k, t, h, a, b, av, c, e, oc, src, n)`,
			int64(n), orgs, kinds, txIDs, holdIDs, amounts, bals, avails, currencies, exps, occurred, sources)
	}
	batch.Queue("COMMIT")
	if err := conn.SendBatch(ctx, batch).Close(); err != nil {
		return true, fmt.Errorf("writing ledger batch: %w", err)
	}
	return true, nil
}
