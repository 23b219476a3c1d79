package sdkjournal_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tallyhq/tally/pkg/chaos/sdkjournal"
)

func TestJournalKeepsUnacknowledgedDebitsAcrossStarts(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "journal")
	a := sdkjournal.Debit{Key: "k1", Org: "org-00", Amount: 1000}
	b := sdkjournal.Debit{Key: "k2", Org: "org-01", Amount: 2000}
	c := sdkjournal.Debit{Key: "k3", Org: "org-00", Amount: 3000}
	w, err := sdkjournal.Open(path)
	require.NoError(t, err)
	require.NoError(t, w.Start())
	for _, d := range []sdkjournal.Debit{a, b, c} {
		require.NoError(t, w.Sent(d))
	}
	require.NoError(t, w.Acknowledged("k2", "tx-2", false))
	require.NoError(t, w.Close())

	// A second process (after a kill) appends to the same journal.
	w, err = sdkjournal.Open(path)
	require.NoError(t, err)
	require.NoError(t, w.Start())
	require.NoError(t, w.Acknowledged("k1", "tx-1", true))
	require.NoError(t, w.Close())

	st, err := sdkjournal.Read(path)
	require.NoError(t, err)
	require.Equal(t, 2, st.Starts)
	require.Equal(t, []sdkjournal.Debit{a, b, c}, st.Sent)
	require.Equal(t, map[string]sdkjournal.Ack{"k1": {Transaction: "tx-1", Replayed: true}, "k2": {Transaction: "tx-2"}}, st.Acks)
	require.Equal(t, []sdkjournal.Debit{c}, st.Unacknowledged())
	require.Zero(t, st.Torn)
}

func TestJournalLines(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		text  string
		sent  int
		acks  int
		torn  int
		start int
	}{
		{"missing file", "", 0, 0, 0, 0},
		{"whole lines", "start\ns k org-00 5\na k tx\n", 1, 1, 0, 1},
		{"replayed ack", "s k org-00 5\na k tx r\n", 1, 1, 0, 0},
		{"bad amount", "s k org-00 x\n", 0, 0, 1, 0},
		{"unknown line", "s k\n", 0, 0, 1, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "journal")
			if tt.text != "" {
				require.NoError(t, os.WriteFile(path, []byte(tt.text), 0o600))
			}
			st, err := sdkjournal.Read(path)
			require.NoError(t, err)
			require.Len(t, st.Sent, tt.sent)
			require.Len(t, st.Acks, tt.acks)
			require.Equal(t, tt.torn, st.Torn)
			require.Equal(t, tt.start, st.Starts)
		})
	}
}
