package ledger

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestCursorRoundTrip(t *testing.T) {
	t.Parallel()
	c, err := ParseCursor("b:97,a:120")
	require.NoError(t, err)
	require.Equal(t, Cursor{"a": 120, "b": 97}, c)
	require.Equal(t, "a:120,b:97", c.String())
	empty, err := ParseCursor("")
	require.NoError(t, err)
	require.Empty(t, empty)
	for _, bad := range []string{"a", "a:", ":1", "a:-1", "a:1,a:2", "a:x"} {
		_, err := ParseCursor(bad)
		require.ErrorIs(t, err, ErrInvalid, "%q", bad)
	}
}

// A fenced account refuses every write, replays included: the router retries them on the shard
// the organization moved to, where its keys were copied.
func TestFencedAccountRefusesWrites(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name string
		acct Account
		want error
	}{
		{"moved", Account{ID: 1, OrgID: "o", Currency: "USD", MovedTo: "b"}, ErrMoved},
		{"frozen", Account{ID: 1, OrgID: "o", Currency: "USD", Frozen: true}, ErrFrozen},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			acct := tc.acct
			b := NewBatch(BatchConfig{Now: now, NewID: func() string { return "id" },
				PlatformAccount: func(kind, cur string) string { return "platform:" + kind + ":" + cur + ":00" },
				Accounts:        map[string]*Account{"o": &acct}, Holds: map[string]*Hold{}, Existing: map[IdemKey]Replay{}})
			_, err := b.Apply(&Request{Op: OpDebit, OrgID: "o", Amount: 5, IdempotencyKey: "k"})
			require.ErrorIs(t, err, tc.want)
			var moved *MovedError
			if errors.As(err, &moved) {
				require.Equal(t, "b", moved.Shard)
			}
			require.True(t, b.Empty(), "nothing written")
		})
	}
}
