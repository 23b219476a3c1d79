package committer_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tallyhq/tally/services/ledger/internal/committer"
	"github.com/tallyhq/tally/services/ledger/internal/ledger"
)

// scriptedStore answers each Apply with the next error of its script, then commits.
type scriptedStore struct {
	mu       sync.Mutex
	script   []error
	attempts int
}

func (s *scriptedStore) Apply(_ context.Context, reqs []*ledger.Request) (ledger.Applied, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.attempts++
	if len(s.script) > 0 {
		err := s.script[0]
		s.script = s.script[1:]
		if err != nil {
			return ledger.Applied{}, err
		}
	}
	out := ledger.Applied{Outcomes: make([]ledger.Outcome, len(reqs))}
	for i, r := range reqs {
		out.Outcomes[i] = ledger.Outcome{Result: ledger.Result{Account: ledger.Account{OrgID: r.OrgID}}}
	}
	return out, nil
}

func (s *scriptedStore) tries() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.attempts
}

var (
	errDown    = fmt.Errorf("%w: acquiring connection: connection refused", ledger.ErrUnavailable)
	errUnknown = fmt.Errorf("%w: %w: writing ledger batch: %w", ledger.ErrOutcomeUnknown, ledger.ErrUnavailable, io.ErrUnexpectedEOF)
	errData    = errors.New("writing ledger batch: check violation")
)

func start(t *testing.T, st committer.Applier, retryFor time.Duration, onUnknown func()) *committer.GroupCommitter {
	t.Helper()
	gc, err := committer.New(committer.Config{Store: st, RetryFor: retryFor, OnUnknownOutcome: onUnknown, Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- gc.Run(ctx) }()
	t.Cleanup(func() { cancel(); require.NoError(t, <-done) })
	return gc
}

func debit(key string) *ledger.Request {
	return &ledger.Request{Op: ledger.OpDebit, OrgID: "o", Amount: 1, IdempotencyKey: key}
}

func TestCommitterRetriesAnUnavailableDatabase(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name        string
		script      []error
		retryFor    time.Duration
		wantErr     error
		wantTries   int
		wantUnknown bool
	}{
		{"a restart within RetryFor is invisible", []error{errDown, errDown, errDown}, time.Minute, nil, 4, false},
		{"an unanswered COMMIT is retried, and replays resolve it", []error{errUnknown}, time.Minute, nil, 2, false},
		{"an outage beyond RetryFor is Unavailable", []error{errDown, errDown, errDown, errDown, errDown, errDown, errDown, errDown}, 20 * time.Millisecond, ledger.ErrUnavailable, 0, false},
		{"an unknown outcome left unresolved says so", []error{errUnknown, errDown, errDown, errDown, errDown, errDown, errDown, errDown}, 20 * time.Millisecond, ledger.ErrUnavailable, 0, true},
		{"a data error is not retried", []error{errData}, time.Minute, errData, 1, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			st := &scriptedStore{script: tc.script}
			var unknown atomic.Bool
			gc := start(t, st, tc.retryFor, func() { unknown.Store(true) })
			_, err := gc.Submit(t.Context(), debit("k"))
			if tc.wantErr == nil {
				require.NoError(t, err)
			} else {
				require.ErrorIs(t, err, tc.wantErr)
			}
			if tc.wantTries > 0 {
				require.Equal(t, tc.wantTries, st.tries())
			}
			require.Equal(t, tc.wantUnknown, unknown.Load())
		})
	}
}

func TestCommitterFailsFastWhileTheDatabaseIsDown(t *testing.T) {
	t.Parallel()
	down := make([]error, 1000)
	for i := range down {
		down[i] = errDown
	}
	st := &scriptedStore{script: down}
	gc := start(t, st, time.Millisecond, nil)

	// The first write finds the database down and, past RetryFor, marks it so.
	_, err := gc.Submit(t.Context(), debit("first"))
	require.ErrorIs(t, err, ledger.ErrUnavailable)
	tries := st.tries()

	// While down, writes are refused without reaching the database, but for one probe now and then.
	for i := range 100 {
		_, err := gc.Submit(t.Context(), debit(fmt.Sprintf("k%d", i)))
		require.ErrorIs(t, err, ledger.ErrUnavailable)
	}
	require.Less(t, st.tries()-tries, 100, "most writes never reach a database known to be down")

	// Back: a probe commits and the committer takes every write again.
	st.mu.Lock()
	st.script = nil
	st.mu.Unlock()
	require.Eventually(t, func() bool {
		_, err := gc.Submit(t.Context(), debit("probe"))
		return err == nil
	}, 10*time.Second, 10*time.Millisecond)
	for i := range 20 {
		_, err := gc.Submit(t.Context(), debit(fmt.Sprintf("after-%d", i)))
		require.NoError(t, err)
	}
}

func TestCommitterCallsOnCommitBeforeAnswering(t *testing.T) {
	t.Parallel()
	// OnCommit is called before the writers are answered, with what committed.
	var got []ledger.Applied
	var mu sync.Mutex
	gc, err := committer.New(committer.Config{Store: &scriptedStore{}, Logger: slog.New(slog.DiscardHandler), OnCommit: func(_ context.Context, a ledger.Applied) {
		mu.Lock()
		got = append(got, a)
		mu.Unlock()
	}})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- gc.Run(ctx) }()
	defer func() { cancel(); require.NoError(t, <-done) }()
	_, err = gc.Submit(t.Context(), debit("k"))
	require.NoError(t, err)
	mu.Lock()
	defer mu.Unlock()
	require.Len(t, got, 1, "OnCommit ran before Submit returned")
}

// TestEnqueueAnswersEachRequestOnceAfterItsBatch: Enqueue returns at once and calls done once
// per request, with its own outcome, after the batch carrying it was applied; an outage's error
// reaches done like Submit's caller.
func TestEnqueueAnswersEachRequestOnceAfterItsBatch(t *testing.T) {
	t.Parallel()
	st := &scriptedStore{script: []error{errData}}
	gc := start(t, st, time.Minute, nil)
	const n = 500
	var mu sync.Mutex
	got := map[string]int{}
	var failed atomic.Int32
	var wg sync.WaitGroup
	wg.Add(n)
	for i := range n {
		key := fmt.Sprintf("k-%d", i)
		require.NoError(t, gc.Enqueue(t.Context(), debit(key), func(o ledger.Outcome) {
			defer wg.Done()
			if o.Err != nil {
				require.ErrorIs(t, o.Err, errData)
				failed.Add(1)
				return
			}
			mu.Lock()
			got[key]++
			mu.Unlock()
		}))
	}
	wg.Wait()
	// The first batch failed as a whole: alone, its request gets the error; with others, each is
	// retried on its own and commits.
	require.LessOrEqual(t, failed.Load(), int32(1))
	require.Len(t, got, n-int(failed.Load()))
	for k, c := range got {
		require.Equal(t, 1, c, k)
	}
}
