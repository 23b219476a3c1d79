package shard

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tallyhq/tally/services/ledger/internal/ledger"
)

// A wait for a shard to pass a sequence is released by the first delivery at or past it on that
// shard, never by another shard's, and is not needed when the start position is already there.
func TestDeliveredReleasesWaitersAtTheirSequence(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		start    ledger.Cursor
		shard    string
		seq      int64
		sets     []shardEvent // deliveries, in order (only shard and seq used)
		released int          // how many sets release the wait (-1: never; 0: no wait at all)
	}{
		{"the cursor already passed it", ledger.Cursor{"a": 9}, "a", 7, nil, 0},
		{"exactly at the cursor", ledger.Cursor{"a": 7}, "a", 7, nil, 0},
		{"a move-out point of 0: nothing to wait for", nil, "a", 0, nil, 0},
		{"released at the sequence", nil, "a", 7, at("a", 3, "a", 7, "a", 8), 2},
		{"released past it (sparse sequences)", nil, "a", 7, at("a", 3, "a", 12), 2},
		{"another shard's deliveries do not count", ledger.Cursor{"b": 100}, "a", 7, at("b", 101, "b", 102, "a", 7), 3},
		{"never reached", nil, "a", 7, at("a", 3, "a", 6, "b", 40), -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			d := newDelivered(tc.start)
			done := d.wait(tc.shard, tc.seq)
			if tc.released == 0 {
				require.Nil(t, done)
				return
			}
			require.NotNil(t, done)
			released := -1
			for i, s := range tc.sets {
				d.set(s.shard, s.e.Seq)
				select {
				case <-done:
					if released < 0 {
						released = i + 1
					}
				default:
				}
			}
			require.Equal(t, tc.released, released)
			if released < 0 {
				require.Len(t, d.waiters, 1, "a waiter not released is kept")
			} else {
				require.Empty(t, d.waiters, "a released waiter is dropped")
			}
		})
	}
}

// at builds deliveries from shard, seq pairs.
func at(pairs ...any) []shardEvent {
	var out []shardEvent
	for i := 0; i+1 < len(pairs); i += 2 {
		out = append(out, shardEvent{shard: pairs[i].(string), e: ledger.Event{Seq: int64(pairs[i+1].(int))}})
	}
	return out
}
