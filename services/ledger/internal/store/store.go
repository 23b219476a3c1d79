// Package store persists the ledger in PostgreSQL. Every write goes through UpdateAccounts, which
// runs a batch in one database transaction: lock the accounts (in id order), load holds and
// idempotency keys, let the caller decide (ledger.Decide, in memory), then write transactions,
// postings, holds, balances and outbox events and commit once.
package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tallyhq/tally/pkg/money"
	"github.com/tallyhq/tally/pkg/pg"
	"github.com/tallyhq/tally/services/ledger/internal/ledger"
)

// Config configures a Store.
type Config struct {
	// DefaultCurrency is the currency of an account opened by a request naming none.
	DefaultCurrency string
	// Timeout bounds every call to PostgreSQL, a whole batch transaction included (default 5s).
	Timeout time.Duration
}

// Store is the PostgreSQL ledger.
type Store struct {
	pool   *pgxpool.Pool
	cfg    Config
	mu     sync.Mutex
	idByNm map[string]int64 // platform account ids by name
	// knownOrgs remembers organizations whose account exists (accounts are never deleted), so
	// batches skip the account insert for them.
	knownOrgs sync.Map
	// projectOrgs remembers the organizations last seen with project limits, so a batch reads
	// their limits in its locking round trip (a hint: the count read under lock decides).
	projectOrgs sync.Map
}

// New returns a Store over pool, whose search_path is the ledger schema.
func New(pool *pgxpool.Pool, cfg Config) (*Store, error) {
	if pool == nil {
		return nil, errors.New("store: pool is required")
	}
	if cfg.DefaultCurrency == "" {
		cfg.DefaultCurrency = "USD"
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 5 * time.Second
	}
	return &Store{pool: pool, cfg: cfg, idByNm: map[string]int64{}}, nil
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

// Decide is the in-memory step of a batch: given the state read under lock, it returns the rows
// to write (ledger.Decide). An error commits nothing.
type Decide func(*ledger.Locked) (*ledger.Batch, error)

// UpdateAccounts locks what ls names in one database transaction, runs decide over it, writes
// the batch decide returns and commits. An error return means nothing at all was committed; the
// returned Applied has no Outcomes (they are decide's). The transaction takes two round trips:
// BEGIN and the locking reads pipelined in one, the writes and COMMIT in the other.
//
// A failure before COMMIT was sent leaves nothing behind. A lost answer to the COMMIT is
// ledger.ErrOutcomeUnknown (and ledger.ErrUnavailable): the batch may have committed.
func (s *Store) UpdateAccounts(parent context.Context, ls ledger.LockSet, decide Decide) (ledger.Applied, error) {
	ctx, cancel := s.deadline(parent)
	defer cancel()
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return ledger.Applied{}, fail(parent, fmt.Errorf("acquiring connection: %w", err))
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

	lk, epoch, err := s.lock(ctx, conn.Conn(), ls)
	if err != nil {
		return ledger.Applied{}, fail(parent, err)
	}
	b, err := decide(lk)
	if err != nil {
		return ledger.Applied{}, err
	}
	out := ledger.Applied{CacheEpoch: epoch}
	if b.Empty() {
		// Nothing to write: replays and refusals only (the deferred ROLLBACK ends it).
		out.Accounts = lockedAccounts(lk)
		return out, nil
	}
	if sent, err := s.write(ctx, conn.Conn(), b); err != nil {
		err = fail(parent, err)
		if sent && errors.Is(err, ledger.ErrUnavailable) && !pgconn.SafeToRetry(err) {
			err = fmt.Errorf("%w: %w", ledger.ErrOutcomeUnknown, err)
		}
		return ledger.Applied{}, err
	}
	committed = true
	out.Accounts = lockedAccounts(lk)
	out.Events = len(b.Events)
	return out, nil
}

// lockedAccounts returns the locked accounts in the state the transaction leaves them in (the
// batch changes them in place), which is what PostgreSQL holds once it commits or rolls back.
func lockedAccounts(lk *ledger.Locked) []ledger.Account {
	accts := make([]ledger.Account, 0, len(lk.Accounts))
	for _, a := range lk.Accounts {
		accts = append(accts, *a)
	}
	return accts
}

// accountColumns reads an organization's account. balance is numeric (platform rows may exceed
// int64); an organization's row is kept within int64 by a CHECK constraint, so the cast is exact.
// moved_to and frozen are the residency fence (ledger.Account.Resident), read with the lock every
// write takes anyway; so is project_limit_count, which says whether project_limits has rows to
// read for the account.
const accountColumns = `id, org_id, currency, balance::bigint, held, coalesce((extract(epoch from expires_at) * 1000000)::bigint, 0), version,
coalesce(moved_to, ''), frozen, project_limit_count, ` + spendColumns

// scanAccount reads accountColumns, then extra.
func scanAccount(row pgx.Row, extra ...any) (ledger.Account, error) {
	var a ledger.Account
	var bal, held, expMicros int64
	var sp spendRow
	dest := append([]any{&a.ID, &a.OrgID, &a.Currency, &bal, &held, &expMicros, &a.Version, &a.MovedTo, &a.Frozen, &a.ProjectLimitCount}, sp.dest()...)
	if err := row.Scan(append(dest, extra...)...); err != nil {
		return ledger.Account{}, err
	}
	a.Balance, a.Held = money.Nanos(bal), money.Nanos(held)
	a.ExpiresAt = fromMicros(expMicros)
	sp.into(&a)
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

// lock opens the accounts ls may create, then begins the batch transaction and reads, under
// lock, the cache epoch, the accounts, the holds and the idempotency keys ls names.
func (s *Store) lock(ctx context.Context, conn *pgx.Conn, ls ledger.LockSet) (*ledger.Locked, int64, error) {
	if err := s.openAccounts(ctx, ls.Open); err != nil {
		return nil, 0, err
	}
	lk := &ledger.Locked{Accounts: map[string]*ledger.Account{}, Holds: map[string]*ledger.Hold{}, Existing: map[ledger.IdemKey]ledger.Replay{}}
	holdIDs := ls.HoldIDs
	if holdIDs == nil {
		holdIDs = []string{}
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
	s.queueLockAccounts(batch, ls.Orgs, holdIDs, lk.Accounts)
	// The project limits of the organizations known to have some are read in the same round
	// trip, after the lock; a batch of organizations without any runs no statement for them.
	read := s.limitedOrgs(ls.Orgs)
	if len(read) > 0 {
		queueReadProjectLimits(batch, read, lk.Accounts)
	}
	if len(holdIDs) > 0 {
		queueLockHolds(batch, holdIDs, lk.Holds)
	}
	var replays replayIDs
	if len(ls.Keys) > 0 {
		queueKeys(batch, ls.Keys, lk.Existing, &replays)
	}
	if err := conn.SendBatch(ctx, batch).Close(); err != nil {
		return nil, 0, fmt.Errorf("locking accounts: %w", err)
	}
	if len(replays.txs)+len(replays.holds) > 0 {
		if err := loadReplays(ctx, conn, lk.Existing, replays.txs, replays.holds); err != nil {
			return nil, 0, err
		}
	}
	if err := readLateProjectLimits(ctx, conn, read, lk.Accounts); err != nil {
		return nil, 0, err
	}
	return lk, epoch, nil
}

// openAccounts creates the accounts of open not known to exist yet. They are opened in
// autocommit, before the batch transaction, so the rows are committed and visible to the locking
// read whatever happens to the batch; an account that stays empty because its first request was
// refused is harmless.
func (s *Store) openAccounts(ctx context.Context, open []ledger.NewAccount) error {
	var orgs, currencies []string
	for _, a := range open {
		if _, known := s.knownOrgs.Load(a.OrgID); known {
			continue
		}
		cur := a.Currency
		if cur == "" {
			cur = s.cfg.DefaultCurrency
		}
		orgs, currencies = append(orgs, a.OrgID), append(currencies, cur)
	}
	if len(orgs) == 0 {
		return nil
	}
	if _, err := s.pool.Exec(ctx, `INSERT INTO accounts (name, kind, org_id, currency)
SELECT 'org:' || o, 'org', o, c FROM unnest($1::text[], $2::text[]) AS t(o, c)
ON CONFLICT DO NOTHING`, orgs, currencies); err != nil {
		return fmt.Errorf("opening accounts: %w", err)
	}
	return nil
}

// queueLockAccounts locks the accounts of orgs and of the holds named, in id order, so
// concurrent batches never deadlock (holds are locked after accounts). One "= ANY" over the
// organizations named and those of the holds named keeps it an index scan.
func (s *Store) queueLockAccounts(batch *pgx.Batch, orgs, holdIDs []string, into map[string]*ledger.Account) {
	batch.Queue(`SELECT `+accountColumns+` FROM accounts WHERE kind = 'org'
AND org_id = ANY($1::text[] || ARRAY(SELECT h.org_id FROM holds h WHERE h.id = ANY($2::text[]::uuid[])))
ORDER BY id FOR UPDATE`, orgs, holdIDs).Query(func(rows pgx.Rows) error {
		for rows.Next() {
			a, err := scanAccount(rows)
			if err != nil {
				return fmt.Errorf("scanning account: %w", err)
			}
			into[a.OrgID] = &a
			s.knownOrgs.Store(a.OrgID, struct{}{})
			s.rememberProjectLimits(a)
		}
		return rows.Err()
	})
}

func queueLockHolds(batch *pgx.Batch, holdIDs []string, into map[string]*ledger.Hold) {
	batch.Queue(`SELECT `+holdColumns+` FROM holds WHERE id = ANY($1::text[]::uuid[]) ORDER BY id FOR UPDATE`, holdIDs).Query(func(rows pgx.Rows) error {
		for rows.Next() {
			h, err := scanHold(rows)
			if err != nil {
				return fmt.Errorf("scanning hold: %w", err)
			}
			into[h.ID] = h
		}
		return rows.Err()
	})
}

// replayIDs are the transactions and holds the stored idempotency keys point at.
type replayIDs struct{ txs, holds []string }

// queueKeys reads the stored idempotency keys of refs, looked up by primary key (org_id, key);
// a request naming a hold uses the hold's org.
func queueKeys(batch *pgx.Batch, refs []ledger.KeyRef, into map[ledger.IdemKey]ledger.Replay, replays *replayIDs) {
	orgs, keys, holds := make([]string, len(refs)), make([]string, len(refs)), make([]string, len(refs))
	for i, r := range refs {
		orgs[i], keys[i], holds[i] = r.OrgID, r.Key, r.HoldID
	}
	// Debits' keys are on their transactions (see the migration debit_keys_on_transactions).
	// Each key is looked up by itself (LATERAL ... LIMIT 1: at most one row per key, the unique
	// indexes say so): written as "(org, key) IN (...)", the planner, misled by the partial
	// index's statistics, walked the whole of transactions_debit_key on every batch, a cost that
	// grew with the table (pg_stat_statements: most of PostgreSQL's time per debit).
	batch.Queue(`WITH wanted AS (
    SELECT DISTINCT w.o, w.k FROM (
        SELECT u.o, u.k FROM unnest($1::text[], $2::text[]) AS u(o, k) WHERE u.o <> ''
        UNION ALL SELECT h.org_id, u.k FROM unnest($2::text[], $3::text[]) AS u(k, hid) JOIN holds h ON u.hid <> '' AND h.id = u.hid::uuid
    ) w
)
SELECT k.org_id, k.key, k.operation, k.request_hash, coalesce(k.transaction_id::text, ''), coalesce(k.hold_id::text, '')
FROM wanted w CROSS JOIN LATERAL (SELECT * FROM idempotency_keys k WHERE k.org_id = w.o AND k.key = w.k LIMIT 1) k
UNION ALL
SELECT t.org_id, t.idempotency_key, 'debit', t.request_hash, t.id::text, ''
FROM wanted w CROSS JOIN LATERAL (SELECT * FROM transactions t WHERE t.org_id = w.o AND t.idempotency_key = w.k AND t.request_hash IS NOT NULL LIMIT 1) t`,
		orgs, keys, holds).Query(func(rows pgx.Rows) error {
		for rows.Next() {
			var rec ledger.IdempotencyRecord
			var op string
			if err := rows.Scan(&rec.OrgID, &rec.Key, &op, &rec.RequestHash, &rec.TransactionID, &rec.HoldID); err != nil {
				return fmt.Errorf("scanning idempotency key: %w", err)
			}
			rec.Operation = ledger.Operation(op)
			into[ledger.IdemKey{OrgID: rec.OrgID, Key: rec.Key}] = ledger.Replay{Record: rec}
			if rec.TransactionID != "" {
				replays.txs = append(replays.txs, rec.TransactionID)
			}
			if rec.HoldID != "" {
				replays.holds = append(replays.holds, rec.HoldID)
			}
		}
		return rows.Err()
	})
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
	ids, err := s.platformIDs(ctx, platformNames(b))
	if err != nil {
		return false, err
	}
	batch := &pgx.Batch{}
	keys, onTx := splitKeys(b.Keys)
	if len(keys) > 0 {
		queueInsertKeys(batch, keys)
	}
	if len(b.Transactions) > 0 {
		if err := queueInsertTransactions(batch, b.Transactions, ids, onTx); err != nil {
			return false, err
		}
	}
	if len(b.NewHolds) > 0 {
		queueInsertHolds(batch, b.NewHolds)
	}
	if len(b.ChangedHolds) > 0 {
		// New holds ended in the same batch are inserted above first, so this update finds them.
		queueUpdateHolds(batch, b.ChangedHolds)
	}
	if len(b.Touched) > 0 {
		queueUpdateAccounts(batch, b)
		queueUpdateProjectSpend(batch, b)
	}
	if len(b.Events) > 0 {
		if err := queueInsertEvents(batch, b.Events); err != nil {
			return false, err
		}
	}
	batch.Queue("COMMIT")
	if err := conn.SendBatch(ctx, batch).Close(); err != nil {
		return true, fmt.Errorf("writing ledger batch: %w", err)
	}
	return true, nil
}

// platformNames lists the platform accounts the batch's postings name, each once.
func platformNames(b *ledger.Batch) []string {
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
	return names
}

// splitKeys separates the keys of debits, stored on their transaction rows (their request
// hashes by transaction id), from the others, stored in idempotency_keys.
func splitKeys(recs []ledger.IdempotencyRecord) (rows []ledger.IdempotencyRecord, onTx map[string][]byte) {
	for _, k := range recs {
		if k.Operation == ledger.OpDebit && k.TransactionID != "" && k.HoldID == "" {
			if onTx == nil {
				onTx = make(map[string][]byte, len(recs))
			}
			onTx[k.TransactionID] = k.RequestHash
			continue
		}
		rows = append(rows, k)
	}
	return rows, onTx
}

func queueInsertKeys(batch *pgx.Batch, recs []ledger.IdempotencyRecord) {
	var orgs, keys, ops, txIDs, holdIDs []string
	var hashes [][]byte
	for _, k := range recs {
		orgs, keys, ops = append(orgs, k.OrgID), append(keys, k.Key), append(ops, string(k.Operation))
		hashes, txIDs, holdIDs = append(hashes, k.RequestHash), append(txIDs, k.TransactionID), append(holdIDs, k.HoldID)
	}
	batch.Queue(`INSERT INTO idempotency_keys (org_id, key, operation, request_hash, transaction_id, hold_id)
SELECT o, k, op, h, NULLIF(t, '')::uuid, NULLIF(hd, '')::uuid FROM unnest($1::text[], $2::text[], $3::text[], $4::bytea[], $5::text[], $6::text[]) AS u(o, k, op, h, t, hd)`,
		orgs, keys, ops, hashes, txIDs, holdIDs)
}

// txColumns are the transactions of a batch, column by column.
type txColumns struct {
	ids, orgs, kinds, currencies, descs, metas, reasons, refs, keys, actors, holdIDs, pricings []string
	amounts, after, created                                                                    []int64
	// hashes are debits' request hashes (their idempotency keys live on their rows), read by a move.
	hashes [][]byte
}

func newTxColumns(txs []*ledger.Transaction) (txColumns, error) {
	n := len(txs)
	c := txColumns{
		ids: make([]string, n), orgs: make([]string, n), kinds: make([]string, n), currencies: make([]string, n),
		descs: make([]string, n), metas: make([]string, n), reasons: make([]string, n), refs: make([]string, n),
		keys: make([]string, n), actors: make([]string, n), holdIDs: make([]string, n), pricings: make([]string, n),
		amounts: make([]int64, n), after: make([]int64, n), created: make([]int64, n),
	}
	for i, t := range txs {
		meta, err := encodeMetadata(t.Metadata)
		if err != nil {
			return txColumns{}, err
		}
		c.ids[i], c.orgs[i], c.kinds[i], c.currencies[i] = t.ID, t.OrgID, string(t.Kind), t.Currency
		c.descs[i], c.metas[i], c.reasons[i], c.refs[i], c.keys[i], c.actors[i], c.holdIDs[i] = t.Description, meta, t.Reason, t.Reference, t.IdempotencyKey, t.Actor, t.HoldID
		c.amounts[i], c.after[i], c.created[i] = int64(t.Amount), int64(t.BalanceAfter), toMicros(t.CreatedAt)
		if t.Pricing != nil {
			p, err := json.Marshal(t.Pricing)
			if err != nil {
				return txColumns{}, fmt.Errorf("encoding pricing: %w", err)
			}
			c.pricings[i] = string(p)
		}
	}
	return c, nil
}

// encodeMetadata is a transaction's metadata as JSON, "{}" when it has none: most debits carry
// none, and then json.Marshal's reflection is skipped.
func encodeMetadata(m map[string]string) (string, error) {
	if len(m) == 0 {
		return "{}", nil
	}
	b, err := json.Marshal(m)
	if err != nil {
		return "", fmt.Errorf("encoding metadata: %w", err)
	}
	return string(b), nil
}

// queueInsertTransactions writes the transactions and their postings, and books the postings
// to platform accounts (ids by name) on those accounts' balances.
func queueInsertTransactions(batch *pgx.Batch, txs []*ledger.Transaction, ids map[string]int64, hashes map[string][]byte) error {
	c, err := newTxColumns(txs)
	if err != nil {
		return err
	}
	// The request hash of a debit's key (nil, NULL, for every other transaction).
	reqHashes := make([][]byte, len(txs))
	for i, t := range txs {
		reqHashes[i] = hashes[t.ID]
	}
	var platAcct, platAmt []int64
	for _, t := range txs {
		for j := range t.Postings {
			p := &t.Postings[j]
			if p.AccountID == 0 {
				p.AccountID = ids[p.Account]
				platAcct, platAmt = append(platAcct, p.AccountID), append(platAmt, int64(p.Amount))
			}
		}
	}
	posts, err := batchPostings(txs)
	if err != nil {
		return err
	}
	batch.Queue(`INSERT INTO transactions (id, org_id, kind, amount, balance_after, currency, description, metadata, reason, reference, idempotency_key, actor, hold_id, created_at, pricing, request_hash)
SELECT id::uuid, o, k, a, ba, c, d, m::jsonb, r, ref, ik, ac, NULLIF(h, '')::uuid, 'epoch'::timestamptz + ca * interval '1 microsecond', NULLIF(p, '')::json, rh
FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::bigint[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::text[], $13::text[], $14::bigint[], $15::text[], $16::bytea[])
  WITH ORDINALITY AS u(id, o, k, a, ba, c, d, m, r, ref, ik, ac, h, ca, p, rh, n)
ORDER BY u.n`, c.ids, c.orgs, c.kinds, c.amounts, c.after, c.currencies, c.descs, c.metas, c.reasons, c.refs, c.keys, c.actors, c.holdIDs, c.created, c.pricings, reqHashes)
	batch.Queue(`INSERT INTO postings (transaction_id, account_id, amount, entry_id)
SELECT t::uuid, a, v, NULLIF(e, '')::uuid FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::text[]) AS u(t, a, v, e)`,
		posts.txs, posts.accounts, posts.amount, posts.entries)
	if len(platAcct) > 0 {
		// Summed in SQL as numeric, exactly: a batch's postings to one platform row may add up
		// beyond int64, and so may the row's balance (see the migration that made it numeric).
		batch.Queue(`UPDATE accounts SET balance = accounts.balance + u.d, version = accounts.version + 1
FROM (SELECT p.id, sum(p.v) AS d FROM unnest($1::bigint[], $2::bigint[]) AS p(id, v) GROUP BY p.id HAVING sum(p.v) <> 0) AS u
WHERE accounts.id = u.id`, platAcct, platAmt)
	}
	return nil
}

func queueInsertHolds(batch *pgx.Batch, holds []*ledger.Hold) {
	var ids, orgs, currencies, descs []string
	var amounts, exps, created []int64
	for _, h := range holds {
		ids, orgs, currencies, descs = append(ids, h.ID), append(orgs, h.OrgID), append(currencies, h.Currency), append(descs, h.Description)
		amounts, exps, created = append(amounts, int64(h.Amount)), append(exps, toMicros(h.ExpiresAt)), append(created, toMicros(h.CreatedAt))
	}
	batch.Queue(`INSERT INTO holds (id, org_id, amount, currency, status, description, expires_at, created_at)
SELECT id::uuid, o, a, c, 'active', d, 'epoch'::timestamptz + e * interval '1 microsecond', 'epoch'::timestamptz + ca * interval '1 microsecond'
FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[], $5::text[], $6::bigint[], $7::bigint[]) AS u(id, o, a, c, d, e, ca)`,
		ids, orgs, amounts, currencies, descs, exps, created)
}

func queueUpdateHolds(batch *pgx.Batch, holds map[string]*ledger.Hold) {
	var ids, statuses, txIDs []string
	var ended, captured []int64
	for _, h := range holds {
		ids, statuses, txIDs = append(ids, h.ID), append(statuses, string(h.Status)), append(txIDs, h.TransactionID)
		ended, captured = append(ended, toMicros(h.EndedAt)), append(captured, int64(h.Captured))
	}
	batch.Queue(`UPDATE holds SET status = u.s, ended_at = 'epoch'::timestamptz + u.e * interval '1 microsecond',
    captured = CASE WHEN u.s = 'captured' THEN u.c END, transaction_id = NULLIF(u.t, '')::uuid
FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[], $5::text[]) AS u(id, s, e, c, t) WHERE holds.id = u.id::uuid`,
		ids, statuses, ended, captured, txIDs)
}

// queueUpdateAccounts writes the organizations' accounts the batch changed.
func queueUpdateAccounts(batch *pgx.Batch, b *ledger.Batch) {
	var ids, bals, helds, exps, versions []int64
	for _, org := range b.Touched {
		a, _ := b.Account(org)
		ids, bals, helds = append(ids, a.ID), append(bals, int64(a.Balance)), append(helds, int64(a.Held))
		exps, versions = append(exps, toMicros(a.ExpiresAt)), append(versions, a.Version)
	}
	sp := newSpendColumns(b)
	batch.Queue(`UPDATE accounts SET balance = u.b, held = u.h, version = u.v,
    expires_at = CASE WHEN u.e = 0 THEN NULL ELSE 'epoch'::timestamptz + u.e * interval '1 microsecond' END,
    `+spendAssignments+`
FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::bigint[], $5::bigint[], $6::bigint[], $7::bigint[], $8::boolean[]) AS u(id, b, h, e, v, sm, ms, sa) WHERE accounts.id = u.id`,
		ids, bals, helds, exps, versions, sp.months, sp.amounts, sp.alerted)
}

// MaxEventsPerInsert bounds the outbox events of one insert: an event's seq is a fresh
// transaction id, taken by the insert, times 2^20 plus its ordinal in the insert (see the
// migration 20261224000010_xid_event_seqs), so a batch never writes more.
const MaxEventsPerInsert = 1<<20 - 1

// queueInsertEvents writes events with seqs derived from a transaction id the insert takes while
// the batch holds all its locks, taking no lock of its own: batches of several workers commit
// concurrently, each organization's events stay in its commit order, and readers keep to the
// horizon (seqHorizon).
func queueInsertEvents(batch *pgx.Batch, events []ledger.Event) error {
	n := len(events)
	if n > MaxEventsPerInsert {
		return fmt.Errorf("a batch of %d events: one insert writes at most %d", n, MaxEventsPerInsert)
	}
	orgs, kinds, txIDs, holdIDs, currencies, sources := make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	amounts, bals, avails, exps, occurred := make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n)
	for i, e := range events {
		orgs[i], kinds[i], txIDs[i], holdIDs[i], currencies[i], sources[i] = e.OrgID, string(e.Kind), e.TransactionID, e.HoldID, e.Currency, string(e.CreditSource)
		amounts[i], bals[i], avails[i], exps[i], occurred[i] = int64(e.Amount), int64(e.Balance), int64(e.Available), toMicros(e.ExpiresAt), toMicros(e.OccurredAt)
	}
	batch.Queue(`INSERT INTO events (seq, org_id, kind, transaction_id, hold_id, amount, balance, available, currency, expires_at, occurred_at, credit_source, spend_limit)
SELECT s.base + u.n, u.o, u.k, NULLIF(u.t, '')::uuid, NULLIF(u.h, '')::uuid, u.a, u.b, u.av, u.c,
    CASE WHEN u.e = 0 THEN NULL ELSE 'epoch'::timestamptz + u.e * interval '1 microsecond' END,
    'epoch'::timestamptz + u.oc * interval '1 microsecond', NULLIF(u.src, ''), NULLIF(u.sl, 0)
FROM (SELECT event_seq_base($1) AS base) s, unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::bigint[], $7::bigint[], $8::bigint[], $9::text[], $10::bigint[], $11::bigint[], $12::text[], $13::bigint[])
  WITH ORDINALITY AS u(o, k, t, h, a, b, av, c, e, oc, src, sl, n)`,
		int64(n), orgs, kinds, txIDs, holdIDs, amounts, bals, avails, currencies, exps, occurred, sources, eventSpendLimits(events))
	return nil
}

// seqHorizon is the bound below which every event is final, in a statement reading events: the
// xmin of the statement's own snapshot, times 2^20. Every transaction with a lower xid has
// ended, so its events are visible now or never will be; an open transaction's events are
// numbered from an xid above its own, and every insert yet to come takes a higher one: a reader
// returning only events below it, in seq order, never passes one that becomes visible later.
const seqHorizon = `(SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint * 1048576)`
