package app

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tallyhq/tally/pkg/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

// fakeEpochs is the epoch row of a PostgreSQL that can be made to fail.
type fakeEpochs struct {
	mu     sync.Mutex
	epoch  int64
	fail   bool
	bumps  int
	left   bool
	lostAt int // beats after which a lost replica is found (bumping), 0 never
	beats  int
}

var errFake = errors.New("connection refused")

func (f *fakeEpochs) BumpCacheEpoch(context.Context, string) (int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail {
		return 0, errFake
	}
	f.epoch++
	f.bumps++
	return f.epoch, nil
}

func (f *fakeEpochs) BeatCacheEpoch(context.Context, string, time.Duration) (int64, int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail {
		return 0, 0, errFake
	}
	f.beats++
	if f.beats == f.lostAt {
		f.epoch++
		return f.epoch, 1, nil
	}
	return f.epoch, 0, nil
}

func (f *fakeEpochs) LeaveCacheEpoch(context.Context, string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail {
		return errFake
	}
	f.left = true
	return nil
}

func (f *fakeEpochs) set(fn func(f *fakeEpochs)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f)
}

func (f *fakeEpochs) get() fakeEpochs {
	f.mu.Lock()
	defer f.mu.Unlock()
	return fakeEpochs{epoch: f.epoch, bumps: f.bumps, left: f.left}
}

func testMetrics(t *testing.T) *metrics {
	t.Helper()
	m, err := newMetrics(nil, func() float64 { return 0 })
	require.NoError(t, err)
	return m
}

func startKeeper(t *testing.T, st *fakeEpochs, maxAge time.Duration) *epochKeeper {
	t.Helper()
	k := newEpochKeeper(st, "r1", 10*time.Millisecond, maxAge, 10*maxAge, slog.New(slog.DiscardHandler), testMetrics(t))
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	wg.Go(func() { k.run(ctx) })
	t.Cleanup(func() { cancel(); wg.Wait() })
	return k
}

const waitFor, tick = 10 * time.Second, 2 * time.Millisecond

func TestEpochKeeperTrustsNothingBeforeItsStartBump(t *testing.T) {
	t.Parallel()
	st := &fakeEpochs{epoch: 7, fail: true}
	k := startKeeper(t, st, time.Hour)
	_, ok := k.current()
	require.False(t, ok, "no reading yet")
	// Reads succeed but the start bump has not happened: still nothing is trusted.
	k.observe(7, time.Now())
	_, ok = k.current()
	require.False(t, ok, "a reading does not count before the start bump")

	st.set(func(f *fakeEpochs) { f.fail = false })
	require.Eventually(t, func() bool { e, ok := k.current(); return ok && e == 8 }, waitFor, tick, "the start bump retires every older entry")
	require.Equal(t, 1, st.get().bumps)
}

func TestEpochKeeperInvalidateStopsTrustAtOnce(t *testing.T) {
	t.Parallel()
	st := &fakeEpochs{epoch: 1}
	k := startKeeper(t, st, time.Hour)
	require.Eventually(t, func() bool { _, ok := k.current(); return ok }, waitFor, tick)
	before, _ := k.current()

	st.set(func(f *fakeEpochs) { f.fail = true })
	k.invalidate(reasonWriteFailed)
	for range 50 {
		_, ok := k.current()
		require.False(t, ok, "this replica trusts no entry until its bump is made")
		k.observe(before, time.Now()) // a read meanwhile does not restore trust
	}

	st.set(func(f *fakeEpochs) { f.fail = false })
	require.Eventually(t, func() bool { e, ok := k.current(); return ok && e > before }, waitFor, tick)
}

func TestEpochKeeperReadingExpires(t *testing.T) {
	t.Parallel()
	st := &fakeEpochs{epoch: 1}
	k := startKeeper(t, st, 50*time.Millisecond)
	require.Eventually(t, func() bool { _, ok := k.current(); return ok }, waitFor, tick)
	// PostgreSQL unreachable: the reading ages out, nothing can be shown fresh.
	st.set(func(f *fakeEpochs) { f.fail = true })
	require.Eventually(t, func() bool { _, ok := k.current(); return !ok }, waitFor, tick)
	st.set(func(f *fakeEpochs) { f.fail = false })
	require.Eventually(t, func() bool { _, ok := k.current(); return ok }, waitFor, tick)
}

func TestEpochKeeperFollowsBumpsOfOthers(t *testing.T) {
	t.Parallel()
	st := &fakeEpochs{epoch: 1, lostAt: 5}
	k := startKeeper(t, st, time.Hour)
	require.Eventually(t, func() bool { e, ok := k.current(); return ok && e == 3 }, waitFor, tick, "start bump, then a lost replica's")
	// Another replica's bump, seen by a beat.
	st.set(func(f *fakeEpochs) { f.epoch = 10 })
	require.Eventually(t, func() bool { e, ok := k.current(); return ok && e == 10 }, waitFor, tick)
	// A late, older reading never moves it back.
	k.observe(9, time.Now())
	e, ok := k.current()
	require.True(t, ok)
	require.Equal(t, int64(10), e)
}

func TestEpochKeeperLeave(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		pending   bool
		fail      bool
		wantBump  bool
		wantLeave bool
	}{
		{"clean", false, false, false, true},
		{"pending bump first", true, false, true, true},
		// It stays registered, so the others find it lost and bump.
		{"bump impossible", true, true, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			st := &fakeEpochs{epoch: 1}
			k := newEpochKeeper(st, "r1", time.Second, 2*time.Second, 4*time.Second, slog.New(slog.DiscardHandler), testMetrics(t))
			require.True(t, k.bump(t.Context())) // the start bump
			if tc.pending {
				k.invalidate(reasonShutdownFailed)
			}
			st.set(func(f *fakeEpochs) { f.fail = tc.fail })
			k.leave(t.Context())
			got := st.get()
			require.Equal(t, tc.wantBump, got.bumps == 2)
			require.Equal(t, tc.wantLeave, got.left)
		})
	}
}
