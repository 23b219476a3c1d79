package rental

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tallyhq/tally/pkg/money"
)

func TestPeriodPriceRoundsUpOnce(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		hourly money.Nanos
		period time.Duration
		want   money.Nanos
	}{
		{"one hour is the hourly price", 1_200_000_000, time.Hour, 1_200_000_000},
		{"one second rounds up", 1_200_000_000, time.Second, 333_334},
		{"exact minute", 3_600_000_000, time.Minute, 60_000_000},
		{"two hours", 6_500_000_000, 2 * time.Hour, 13_000_000_000},
		{"free", 0, time.Second, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := PeriodPrice(tt.hourly, tt.period)
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
		})
	}
	_, err := PeriodPrice(1, 0)
	require.ErrorIs(t, err, ErrInvalid)
}

func TestDuePeriodsCountFromTheStartWithoutDrift(t *testing.T) {
	t.Parallel()
	start := time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC)
	base := Rental{StartedAt: start, Period: time.Hour, State: StateRunning}
	tests := []struct {
		name     string
		mutate   func(r *Rental)
		now      time.Time
		want     int64
		wantNext time.Time
	}{
		{"at start", func(*Rental) {}, start, 1, start},
		{"first period charged, before the boundary", func(r *Rental) { r.PeriodsCharged = 1 }, start.Add(59 * time.Minute), 0, start.Add(time.Hour)},
		{"exactly at the boundary", func(r *Rental) { r.PeriodsCharged = 1 }, start.Add(time.Hour), 1, start.Add(time.Hour)},
		{"after a long outage", func(r *Rental) { r.PeriodsCharged = 1 }, start.Add(5*time.Hour + time.Minute), 5, start.Add(time.Hour)},
		{"before the start", func(*Rental) {}, start.Add(-time.Second), 0, start},
		{"stopped mid-period, last period charged", func(r *Rental) {
			r.State, r.StoppedAt, r.PeriodsCharged = StateStopped, start.Add(90*time.Minute), 2
		}, start.Add(3 * time.Hour), 0, time.Time{}},
		{"stopped at a boundary owes nothing for the period starting then", func(r *Rental) {
			r.State, r.StoppedAt, r.PeriodsCharged = StateStopped, start.Add(2*time.Hour), 2
		}, start.Add(3 * time.Hour), 0, time.Time{}},
		{"stopped while the scheduler was behind", func(r *Rental) {
			r.State, r.StoppedAt, r.PeriodsCharged = StateStopped, start.Add(150*time.Minute), 1
		}, start.Add(3 * time.Hour), 2, start.Add(time.Hour)},
		{"suspended", func(r *Rental) {
			r.State, r.SuspendedAt, r.PeriodsCharged = StateSuspended, start.Add(time.Hour), 1
		}, start.Add(3 * time.Hour), 0, time.Time{}},
		{"suspended then stopped", func(r *Rental) {
			r.State, r.SuspendedAt, r.StoppedAt, r.PeriodsCharged = StateStopped, start.Add(time.Hour), start.Add(2*time.Hour), 1
		}, start.Add(3 * time.Hour), 0, time.Time{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := base
			tt.mutate(&r)
			require.Equal(t, tt.want, r.DuePeriods(tt.now))
			require.Equal(t, tt.wantNext, r.NextPeriodAt())
		})
	}
}

func TestApplyAndEvents(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	r := Rental{InstanceID: "i-1", OrgID: "acme", InstanceType: "cpu-8x32", Currency: "USD", PeriodPrice: 7,
		State: StateRunning, StartedAt: now.Add(-3 * time.Hour), Period: time.Hour, PeriodsCharged: 1, TotalCharged: 7}
	out := Outcome{Charges: []Charge{{Period: 1, Amount: 7, TransactionID: "t1"}, {Period: 2, Amount: 7, TransactionID: "t2"}}, Suspended: true, RefusedPeriod: 3}
	after := r.Apply(out, now)
	require.Equal(t, int64(3), after.PeriodsCharged)
	require.Equal(t, money.Nanos(21), after.TotalCharged)
	require.Equal(t, StateSuspended, after.State)
	require.Equal(t, now, after.SuspendedAt)
	require.True(t, after.NextPeriodAt().IsZero())

	events := r.Events(out, now)
	require.Len(t, events, 3)
	require.Equal(t, EventPeriodCharged, events[0].Kind)
	require.Equal(t, "t2", events[1].TransactionID)
	require.Equal(t, EventSuspended, events[2].Kind)
	require.Equal(t, int64(3), events[2].Period)

	// A stopped rental is never suspended.
	r.State, r.StoppedAt = StateStopped, now
	require.Equal(t, StateStopped, r.Apply(out, now).State)
	require.Len(t, r.Events(out, now), 2)
}

func TestChargeKey(t *testing.T) {
	t.Parallel()
	require.Equal(t, "rental:i-1:12", ChargeKey("i-1", 12))
}

func TestTransitionEmitsTheEventsOfEachChange(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	base := Rental{InstanceID: "i-1", OrgID: "acme", InstanceType: "cpu-8x32", Currency: "USD", PeriodPrice: 7,
		StartedAt: now.Add(-90 * time.Minute), Period: time.Hour}
	charge := func(periods ...int64) Outcome {
		var o Outcome
		for _, p := range periods {
			o.Charges = append(o.Charges, Charge{Period: p, Amount: 7})
		}
		return o
	}
	tests := []struct {
		name      string
		mutate    func(r *Rental)
		outcome   Outcome
		wantState State
		want      []EventKind
	}{
		{"a start whose first period is paid runs", func(r *Rental) { r.State = StateStarting }, charge(0),
			StateRunning, []EventKind{EventStarted, EventPeriodCharged}},
		{"a start completed late catches up", func(r *Rental) { r.State = StateStarting }, charge(0, 1),
			StateRunning, []EventKind{EventStarted, EventPeriodCharged, EventPeriodCharged}},
		{"a start completed late, then suspended", func(r *Rental) { r.State = StateStarting },
			Outcome{Charges: []Charge{{Period: 0, Amount: 7}}, Suspended: true, RefusedPeriod: 1},
			StateSuspended, []EventKind{EventStarted, EventPeriodCharged, EventSuspended}},
		{"a start not decided yet stays starting", func(r *Rental) { r.State = StateStarting }, Outcome{},
			StateStarting, nil},
		{"a running rental's boundary", func(r *Rental) { r.State, r.PeriodsCharged = StateRunning, 1 }, charge(1),
			StateRunning, []EventKind{EventPeriodCharged}},
		{"a stopped rental's last owed period", func(r *Rental) {
			r.State, r.StoppedAt, r.PeriodsCharged = StateStopped, now.Add(-10*time.Minute), 1
		}, charge(1), StateStopped, []EventKind{EventPeriodCharged, EventStopped}},
		{"a stopped rental still owing after a failed charge", func(r *Rental) {
			r.State, r.StoppedAt, r.PeriodsCharged = StateStopped, now.Add(-10*time.Minute), 0
		}, charge(0), StateStopped, []EventKind{EventPeriodCharged}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := base
			tt.mutate(&r)
			after, events := r.Transition(tt.outcome, now)
			require.Equal(t, tt.wantState, after.State)
			var kinds []EventKind
			for _, e := range events {
				kinds = append(kinds, e.Kind)
			}
			require.Equal(t, tt.want, kinds)
		})
	}

	refused := base
	refused.State = StateStarting
	require.True(t, refused.StartRefused(Outcome{Suspended: true}))
	require.False(t, refused.StartRefused(charge(0)))
	running := base
	running.State = StateRunning
	require.False(t, running.StartRefused(Outcome{Suspended: true}))
}

func TestStopEmitsStoppedOnceNothingIsOwed(t *testing.T) {
	t.Parallel()
	start := time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC)
	tests := []struct {
		name    string
		r       Rental
		at      time.Time
		owes    bool
		stopped bool
	}{
		{"every started period charged", Rental{State: StateRunning, PeriodsCharged: 2}, start.Add(90 * time.Minute), false, true},
		{"the scheduler was behind", Rental{State: StateRunning, PeriodsCharged: 1}, start.Add(90 * time.Minute), true, false},
		{"at a boundary owes nothing for the period starting then", Rental{State: StateRunning, PeriodsCharged: 2}, start.Add(2 * time.Hour), false, true},
		{"suspended owes nothing more", Rental{State: StateSuspended, SuspendedAt: start.Add(time.Hour), PeriodsCharged: 1}, start.Add(3 * time.Hour), false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := tt.r
			r.StartedAt, r.Period = start, time.Hour
			after, events := r.Stop(tt.at, tt.at)
			require.Equal(t, StateStopped, after.State)
			require.Equal(t, tt.at, after.StoppedAt)
			require.Equal(t, tt.owes, !after.NextPeriodAt().IsZero())
			require.Equal(t, tt.stopped, len(events) == 1 && events[0].Kind == EventStopped)
		})
	}
}
