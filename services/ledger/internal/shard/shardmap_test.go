package shard

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestParseShards(t *testing.T) {
	t.Parallel()
	got, err := ParseShards("  a=postgres://h1,h2/db\n b-2=postgres://x/y ")
	require.NoError(t, err)
	require.Equal(t, []Shard{{"a", "postgres://h1,h2/db"}, {"b-2", "postgres://x/y"}}, got)
	for _, bad := range []string{"", "a", "a=", "A=postgres://x", "a=postgres://x a=postgres://y", "-a=postgres://x"} {
		_, err := ParseShards(bad)
		require.Error(t, err, "%q", bad)
	}
}

func TestHashedIsStableAndSpread(t *testing.T) {
	t.Parallel()
	// Pinned: these decide where money lives and must never change.
	require.Equal(t, uint64(0xc1c1a52dbc80fdcb), Score("a", "org-1"))
	m, err := NewMap([]string{"a", "b", "c"}, nil)
	require.NoError(t, err)
	counts := map[string]int{}
	for i := range 30000 {
		counts[m.Shard(fmt.Sprintf("org-%d", i))]++
	}
	for _, n := range []string{"a", "b", "c"} {
		require.InDelta(t, 10000, counts[n], 600, "shard %s", n)
	}
	// The order of the names does not matter.
	r, err := NewMap([]string{"c", "a", "b"}, nil)
	require.NoError(t, err)
	for i := range 1000 {
		org := fmt.Sprintf("org-%d", i)
		require.Equal(t, m.Shard(org), r.Shard(org))
	}
}

func TestAddingAShardMovesOnlyToIt(t *testing.T) {
	t.Parallel()
	two, err := NewMap([]string{"a", "b"}, nil)
	require.NoError(t, err)
	three, err := NewMap([]string{"a", "b", "c"}, nil)
	require.NoError(t, err)
	moved := 0
	for i := range 9000 {
		org := fmt.Sprintf("org-%d", i)
		if before, after := two.Shard(org), three.Shard(org); before != after {
			require.Equal(t, "c", after, "%s moved from %s to %s", org, before, after)
			moved++
		}
	}
	require.InDelta(t, 3000, moved, 300)
}

func TestOverrides(t *testing.T) {
	t.Parallel()
	_, err := NewMap([]string{"a", "b"}, map[string]string{"x": "z"})
	require.Error(t, err)
	m, err := NewMap([]string{"a", "b"}, nil)
	require.NoError(t, err)
	org := "hot"
	other := "a"
	if m.Hashed(org) == "a" {
		other = "b"
	}
	moved := m.WithOverride(org, other)
	require.Equal(t, other, moved.Shard(org))
	require.True(t, moved.Overridden(org))
	require.False(t, m.Overridden(org), "WithOverride copies")
	require.NotEqual(t, other, m.Shard(org))
}
