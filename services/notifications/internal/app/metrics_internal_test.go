package app

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"

	"github.com/tallyhq/tally/services/notifications/internal/notify"
)

// Each shard's series follow the last event applied from that shard: sequences and clocks are
// per shard, so one shard's events never move another's.
func TestAppliedIsPerShard(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 12, 2, 3, 0, 0, 0, time.UTC)
	ev := func(shard string, seq int64, at time.Duration) notify.LedgerEvent {
		return notify.LedgerEvent{Shard: shard, Seq: seq, OccurredAt: t0.Add(at)}
	}
	type want struct {
		seq float64
		at  time.Time
	}
	for _, tc := range []struct {
		name    string
		batches [][]notify.LedgerEvent
		want    map[string]want
	}{
		{"one shard", [][]notify.LedgerEvent{{ev("main", 3, 0), ev("main", 9, time.Second)}},
			map[string]want{"main": {9, t0.Add(time.Second)}}},
		{"two shards interleaved", [][]notify.LedgerEvent{{ev("a", 40, 0), ev("b", 7, time.Second), ev("a", 52, 2*time.Second)}},
			map[string]want{"a": {52, t0.Add(2 * time.Second)}, "b": {7, t0.Add(time.Second)}}},
		{"a later batch without a shard keeps its series", [][]notify.LedgerEvent{{ev("a", 1, 0), ev("b", 5, time.Second)}, {ev("a", 8, time.Minute)}},
			map[string]want{"a": {8, t0.Add(time.Minute)}, "b": {5, t0.Add(time.Second)}}},
		{"a ledger naming no shard is main", [][]notify.LedgerEvent{{ev("", 4, 0)}},
			map[string]want{"main": {4, t0}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			m, err := NewMetrics(prometheus.NewRegistry())
			require.NoError(t, err)
			for _, b := range tc.batches {
				m.Applied.observe(b)
			}
			require.Equal(t, len(tc.want), testCount(m.Applied.Cursor))
			for shard, w := range tc.want {
				require.Equal(t, w.seq, gauge(t, m.Applied.Cursor, shard), shard)
				require.InDelta(t, float64(w.at.Unix()), gauge(t, m.Applied.OccurredAt, shard), 1e-6, shard)
			}
		})
	}
	var none *Applied
	none.observe([]notify.LedgerEvent{ev("a", 1, 0)}) // optional: a follower without metrics
}

func gauge(t *testing.T, v *prometheus.GaugeVec, shard string) float64 {
	t.Helper()
	var m dto.Metric
	require.NoError(t, v.WithLabelValues(shard).Write(&m))
	return m.GetGauge().GetValue()
}

func testCount(v *prometheus.GaugeVec) int {
	ch := make(chan prometheus.Metric, 16)
	v.Collect(ch)
	close(ch)
	return len(ch)
}
