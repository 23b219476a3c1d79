package store_test

import (
	"context"
	"fmt"
	"hash/fnv"
	"io/fs"
	"log/slog"
	"testing"
	"testing/fstest"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/tallyhq/tally/pkg/money"
	"github.com/tallyhq/tally/pkg/pg"
	"github.com/tallyhq/tally/pkg/testenv"
	"github.com/tallyhq/tally/services/ledger/internal/committer"
	"github.com/tallyhq/tally/services/ledger/internal/ledger"
	"github.com/tallyhq/tally/services/ledger/internal/store"
	"github.com/tallyhq/tally/services/ledger/migrations"
)

// eventsOf returns n events of org, their amounts 1 … n (what readEvents reports them by).
func eventsOf(org string, from, n int) []ledger.Event {
	out := make([]ledger.Event, n)
	for i := range out {
		out[i] = ledger.Event{OrgID: org, Kind: ledger.EventKind("test"), Amount: money.Nanos(from + i), Currency: "USD", OccurredAt: time.Now()}
	}
	return out
}

// readEvents follows the outbox from after, one event per read, saving the cursor after each
// (so a cursor saved at any point is exercised), until it has n events, and returns them as
// "org:amount". The horizon may hold events back while another test's transaction on the
// shared cluster is in flight: an empty read is tried again until ctx ends.
func readEvents(ctx context.Context, t *testing.T, st *store.Store, after int64, n int) (got []string, cursor int64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	cursor = after
	for len(got) < n {
		page, err := st.Events(ctx, cursor, "", 1)
		require.NoError(t, err)
		if len(page) == 0 {
			select {
			case <-ctx.Done():
				t.Fatalf("read %v after %d, want %d events", got, after, n)
			case <-tick.C:
			}
			continue
		}
		require.Greater(t, page[0].Seq, cursor, "seqs grow")
		cursor = page[0].Seq
		got = append(got, fmt.Sprintf("%s:%d", page[0].OrgID, page[0].Amount))
	}
	page, err := st.Events(ctx, cursor, "", 10)
	require.NoError(t, err)
	require.Empty(t, page, "no event beyond the %d written", n)
	return got, cursor
}

// TestEventCursorNeverPassesAnOpenWriter: writer A takes its transaction id and writes events
// without committing; writer B, later, writes and commits. Nothing past the cursor is
// delivered while A is open (with seqs from a plain sequence read in seq order, B's events
// would be, and the cursor would skip A's once they commit); once A ends, every event comes
// once, in seq order: A's first insert's before B's (A's xid is lower), its second insert's,
// written after B committed, after them.
func TestEventCursorNeverPassesAnOpenWriter(t *testing.T) {
	t.Parallel()
	st, pool := newStore(t)
	ctx := t.Context()

	a, err := pool.Begin(ctx)
	require.NoError(t, err)
	defer func() { _ = a.Rollback(context.WithoutCancel(ctx)) }()
	require.NoError(t, store.InsertEvents(ctx, a, eventsOf("a", 1, 2)))

	b, err := pool.Begin(ctx)
	require.NoError(t, err)
	defer func() { _ = b.Rollback(context.WithoutCancel(ctx)) }()
	require.NoError(t, store.InsertEvents(ctx, b, eventsOf("b", 1, 2)))
	require.NoError(t, b.Commit(ctx))

	var committed int
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM events`).Scan(&committed))
	require.Equal(t, 2, committed, "B's events are committed")
	for _, org := range []string{"", "b"} {
		page, err := st.Events(ctx, 0, org, 10)
		require.NoError(t, err)
		require.Empty(t, page, "org %q: nothing is delivered while A, with the lower xid, is open", org)
	}

	require.NoError(t, store.InsertEvents(ctx, a, eventsOf("a", 3, 1)), "a second statement of A")
	require.NoError(t, a.Commit(ctx))
	got, _ := readEvents(ctx, t, st, 0, 5)
	require.Equal(t, []string{"a:1", "a:2", "b:1", "b:2", "a:3"}, got)
}

// TestEventSeqBase: each insert numbers its events from a fresh xid, newer than its
// transaction's own and than the previous insert's, times 2^20; more than 2^20 - 1 events in one
// insert are refused.
func TestEventSeqBase(t *testing.T) {
	t.Parallel()
	_, pool := newStore(t)
	tests := []struct {
		name    string
		written int // events inserted in the transaction first
		asked   int64
		refused bool
	}{
		{name: "the most in one insert", asked: store.MaxEventsPerInsert},
		{name: "one more", asked: store.MaxEventsPerInsert + 1, refused: true},
		{name: "after a first insert", written: 2, asked: store.MaxEventsPerInsert},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := t.Context()
			tx, err := pool.Begin(ctx)
			require.NoError(t, err)
			defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
			var top int64
			require.NoError(t, tx.QueryRow(ctx, `SELECT pg_current_xact_id()::text::bigint`).Scan(&top))
			floor := top << 20
			if tt.written > 0 {
				require.NoError(t, store.InsertEvents(ctx, tx, eventsOf("a", 1, tt.written)))
				require.NoError(t, tx.QueryRow(ctx, `SELECT max(seq) FROM events`).Scan(&floor))
			}
			var base int64
			err = tx.QueryRow(ctx, `SELECT event_seq_base($1)`, tt.asked).Scan(&base)
			if tt.refused {
				var pgErr *pgconn.PgError
				require.ErrorAs(t, err, &pgErr)
				require.Equal(t, "54000", pgErr.Code, pgErr.Message)
				return
			}
			require.NoError(t, err)
			require.Zero(t, base%(1<<20), "a fresh xid times 2^20")
			require.Greater(t, base, floor, "above the transaction's own xid and its earlier events")
			var probes int
			require.NoError(t, tx.QueryRow(ctx, `SELECT count(*) FROM event_xid_probe`).Scan(&probes))
			require.Zero(t, probes, "the probe row is rolled back")
		})
	}
}

// TestEventSeqBaseOutsideTheLedgerSchema: a session whose search_path is not the ledger's (ops'
// psql, usage-bench) can call the schema-qualified function.
func TestEventSeqBaseOutsideTheLedgerSchema(t *testing.T) {
	t.Parallel()
	_, pool := newStore(t)
	ctx := t.Context()
	tx, err := pool.Begin(ctx)
	require.NoError(t, err)
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	var schema string
	require.NoError(t, tx.QueryRow(ctx, `SELECT current_schema()`).Scan(&schema))
	_, err = tx.Exec(ctx, `SET LOCAL search_path TO public`)
	require.NoError(t, err)
	var base int64
	require.NoError(t, tx.QueryRow(ctx, `SELECT `+pgx.Identifier{schema}.Sanitize()+`.event_seq_base(1)`).Scan(&base))
	require.Positive(t, base)
}

// TestEventsOfAnOrganizationInCommitOrder: batch B takes its xid first (locking one account) and
// then waits for the lock of org x's account, held by batch A, which took its xid later and
// commits first. B's event of x comes after A's in x's history (its balance follows A's), so it
// must come after it in the stream too: numbered from B's own, older xid it would come first.
func TestEventsOfAnOrganizationInCommitOrder(t *testing.T) {
	t.Parallel()
	st, pool := newStore(t)
	ctx := t.Context()
	b, err := pool.Begin(ctx)
	require.NoError(t, err)
	defer func() { _ = b.Rollback(context.WithoutCancel(ctx)) }()
	var xidB int64
	require.NoError(t, b.QueryRow(ctx, `SELECT pg_current_xact_id()::text::bigint`).Scan(&xidB), "B's first lock")

	a, err := pool.Begin(ctx)
	require.NoError(t, err)
	defer func() { _ = a.Rollback(context.WithoutCancel(ctx)) }()
	var xidA int64
	require.NoError(t, a.QueryRow(ctx, `SELECT pg_current_xact_id()::text::bigint`).Scan(&xidA))
	require.Greater(t, xidA, xidB)
	require.NoError(t, store.InsertEvents(ctx, a, eventsOf("x", 1, 1)))
	require.NoError(t, a.Commit(ctx))
	// B, granted x's lock once A committed, writes x's next event.
	require.NoError(t, store.InsertEvents(ctx, b, eventsOf("x", 2, 1)))
	require.NoError(t, b.Commit(ctx))

	got, _ := readEvents(ctx, t, st, 0, 2)
	require.Equal(t, []string{"x:1", "x:2"}, got, "x's events in its commit order")
}

// TestDenseSeqsBeforeTheMigrationStayFirst: events numbered by event_sequence before the
// migration come before every later one, so a consumer's saved cursor still resumes; and the
// retired event_sequence refuses the old code's update.
func TestDenseSeqsBeforeTheMigrationStayFirst(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	pool, err := pg.Connect(ctx, testenv.PostgresURL(t), "ledger", 4)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	const xidSeqs = "20261224000010_xid_event_seqs.up.sql"
	before := fstest.MapFS{}
	require.NoError(t, fs.WalkDir(migrations.FS, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || name >= xidSeqs {
			return err
		}
		body, err := fs.ReadFile(migrations.FS, name)
		before[name] = &fstest.MapFile{Data: body}
		return err
	}))
	require.NoError(t, pg.Migrate(ctx, pool, "ledger", before))
	// What the code before wrote: dense seqs under the event_sequence lock.
	_, err = pool.Exec(ctx, `WITH s AS (UPDATE event_sequence SET last = last + 3 WHERE id = 1 RETURNING last)
INSERT INTO events (seq, org_id, kind, amount, balance, available, currency, occurred_at)
SELECT s.last - 3 + g, 'old', 'test', g, 0, 0, 'USD', now() FROM s, generate_series(1, 3) g`)
	require.NoError(t, err)
	require.NoError(t, pg.Migrate(ctx, pool, "ledger", migrations.FS))
	st, err := store.New(pool, store.Config{})
	require.NoError(t, err)

	_, err = pool.Exec(ctx, `UPDATE event_sequence SET last = last + 1 WHERE id = 1`)
	require.ErrorContains(t, err, "event_sequence is retired")
	tx, err := pool.Begin(ctx)
	require.NoError(t, err)
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	require.NoError(t, store.InsertEvents(ctx, tx, eventsOf("new", 1, 2)))
	require.NoError(t, tx.Commit(ctx))

	got, _ := readEvents(ctx, t, st, 0, 5)
	require.Equal(t, []string{"old:1", "old:2", "old:3", "new:1", "new:2"}, got)
	got, _ = readEvents(ctx, t, st, 3, 2)
	require.Equal(t, []string{"new:1", "new:2"}, got, "a cursor saved before the migration resumes")
}

// storeApplier is the ledger's Applier over the store alone (app.Batches without its random
// platform shard): each organization's batches post to their own platform rows, so two
// workers' batches share no row.
type storeApplier struct {
	st     *store.Store
	shards map[string]int
}

func (a storeApplier) Apply(ctx context.Context, reqs []*ledger.Request) (ledger.Applied, error) {
	return applyOnShard(ctx, a.st, reqs, a.shards[reqs[0].OrgID])
}

// workerOrgs returns two organizations the committer's two workers take one each (it spreads
// writes by the FNV-1a hash of the organization).
func workerOrgs() (slow, fast string) {
	of := func(org string) uint32 {
		h := fnv.New32a()
		_, _ = h.Write([]byte(org))
		return h.Sum32() % 2
	}
	slow, fast = "slow", "fast"
	for i := 0; of(fast) == of(slow); i++ {
		fast = fmt.Sprintf("fast-%d", i)
	}
	return slow, fast
}

// lockWaits counts this database's backends waiting for a lock: on the test's advisory lock
// (advisory) or on anything else (other).
func lockWaits(ctx context.Context, t *testing.T, pool *pgxpool.Pool) (advisory, other int) {
	t.Helper()
	err := pool.QueryRow(ctx, `SELECT count(*) FILTER (WHERE wait_event = 'advisory'), count(*) FILTER (WHERE wait_event <> 'advisory')
FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`).Scan(&advisory, &other)
	require.NoError(t, err)
	return advisory, other
}

// TestCommitWorkersCommitConcurrently: with two commit workers, the batch of one organization
// sits in its COMMIT, its events written (a deferred trigger waits there on an advisory lock the
// test holds), while the other worker's batches of another organization commit: no lock is
// shared between them (with the event_sequence row lock they waited for the first's commit).
// The events then arrive once each, in seq order: the waiting batch's first (its xid is lower).
func TestCommitWorkersCommitConcurrently(t *testing.T) {
	t.Parallel()
	st, pool := newStore(t)
	ctx := t.Context()
	slow, fast := workerOrgs()
	_, err := apply(ctx, st, []*ledger.Request{req(ledger.OpCredit, slow, 1_000_000, "seed-slow"), req(ledger.OpCredit, fast, 1_000_000, "seed-fast")})
	require.NoError(t, err)
	_, cursor := readEvents(ctx, t, st, 0, 2)

	_, err = pool.Exec(ctx, `CREATE FUNCTION hold_commit() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN PERFORM pg_advisory_xact_lock_shared(1717); RETURN NULL; END $$;
CREATE CONSTRAINT TRIGGER hold_commit AFTER INSERT ON events DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW WHEN (NEW.org_id = '`+slow+`') EXECUTE FUNCTION hold_commit()`)
	require.NoError(t, err)
	holder, err := pool.Acquire(ctx)
	require.NoError(t, err)
	defer holder.Release()
	_, err = holder.Exec(ctx, `SELECT pg_advisory_lock(1717)`)
	require.NoError(t, err)
	released := false
	release := func() {
		if !released {
			released = true
			_, err := holder.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock(1717)`)
			require.NoError(t, err)
		}
	}
	defer release()

	gc, err := committer.New(committer.Config{Store: storeApplier{st, map[string]int{slow: 1, fast: 2}}, Workers: 2, Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	runCtx, stop := context.WithCancel(ctx)
	ran := make(chan error, 1)
	go func() { ran <- gc.Run(runCtx) }()
	defer func() {
		stop()
		require.NoError(t, <-ran)
	}()

	slowDone := make(chan error, 1)
	go func() {
		_, err := gc.Submit(ctx, req(ledger.OpDebit, slow, 100, "slow-1"))
		slowDone <- err
	}()
	waitFor(ctx, t, "the slow batch waiting in its COMMIT", func() bool { a, _ := lockWaits(ctx, t, pool); return a == 1 })

	for i := range 3 {
		fastDone := make(chan error, 1)
		go func() {
			_, err := gc.Submit(ctx, req(ledger.OpDebit, fast, money.Nanos(10+i), fmt.Sprintf("fast-%d", i)))
			fastDone <- err
		}()
		waitFor(ctx, t, "the fast batch", func() bool {
			select {
			case err := <-fastDone:
				require.NoError(t, err)
				return true
			default:
			}
			_, other := lockWaits(ctx, t, pool)
			require.Zero(t, other, "the fast batch waits for a lock the slow one holds")
			return false
		})
	}
	advisory, _ := lockWaits(ctx, t, pool)
	require.Equal(t, 1, advisory, "the slow batch is still in its COMMIT: both were in flight at once")
	page, err := st.Events(ctx, cursor, "", 10)
	require.NoError(t, err)
	require.Empty(t, page, "the fast batches' events wait for the slow one, whose xid is lower")

	release()
	require.NoError(t, <-slowDone)
	got, _ := readEvents(ctx, t, st, cursor, 4)
	require.Equal(t, []string{slow + ":-100", fast + ":-10", fast + ":-11", fast + ":-12"}, got)
}

// waitFor polls done until it returns true, failing the test when ctx or 30 seconds end first.
func waitFor(ctx context.Context, t *testing.T, what string, done func() bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for !done() {
		select {
		case <-ctx.Done():
			t.Fatalf("waiting for %s: %v", what, ctx.Err())
		case <-tick.C:
		}
	}
}
