package app

import (
	"context"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tallyhq/tally/pkg/loop"
	"github.com/tallyhq/tally/services/instances-metering/internal/rental"
)

// Results of charging one period (bounded label values).
const (
	periodCharged        = "charged"
	periodGrace          = "grace"           // charged into the grace below zero
	periodAlreadyCharged = "already_charged" // its idempotency key was used before
	periodFree           = "free"            // a rental of price 0
	periodFailed         = "failed"          // an outage or a refusal: retried later
)

// suspendedForCredits is the reason of a suspension for want of credits.
const suspendedForCredits = "insufficient_credits"

// rentalStates are the states of tally_metering_rentals.
var rentalStates = []rental.State{rental.StateStarting, rental.StateRunning, rental.StateSuspended, rental.StateStopped}

// Sampling of the rentals by state.
const (
	rentalSampleEvery   = 10 * time.Second
	rentalSampleTimeout = 5 * time.Second
)

// metrics are the metering's domain metrics (tally_metering_*).
type metrics struct {
	rentals     *prometheus.GaugeVec
	periods     *prometheus.CounterVec
	suspensions *prometheus.CounterVec
}

// newMetrics builds the metering's metrics with every label combination at 0 and registers them
// on reg (nil registers nothing).
func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		rentals: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "tally_metering_rentals",
			Help: "Rentals by state (sampled).",
		}, []string{"state"}),
		periods: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tally_metering_periods_charged_total",
			Help: "Rental periods charged by result: charged, grace, already_charged, free, failed.",
		}, []string{"result"}),
		suspensions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tally_metering_suspensions_total",
			Help: "Rentals suspended, by reason.",
		}, []string{"reason"}),
	}
	for _, s := range rentalStates {
		m.rentals.WithLabelValues(string(s))
	}
	for _, r := range []string{periodCharged, periodGrace, periodAlreadyCharged, periodFree, periodFailed} {
		m.periods.WithLabelValues(r)
	}
	m.suspensions.WithLabelValues(suspendedForCredits)
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.rentals, m.periods, m.suspensions} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("registering metering metrics: %w", err)
		}
	}
	return m, nil
}

// sampleRentals keeps tally_metering_rentals current until ctx is done.
func (m *Meter) sampleRentals(ctx context.Context) error {
	return loop.Every(ctx, "rental sampler", rentalSampleEvery, loop.Now, loop.Passes(func(ctx context.Context) {
		sctx, cancel := context.WithTimeout(ctx, rentalSampleTimeout)
		counts, err := m.store.RentalsByState(sctx)
		cancel()
		switch {
		case ctx.Err() != nil:
		case err != nil:
			m.logger.DebugContext(ctx, "counting rentals by state failed", "err", err)
		default:
			for _, s := range rentalStates {
				m.metrics.rentals.WithLabelValues(string(s)).Set(float64(counts[s]))
			}
		}
	}))
}
