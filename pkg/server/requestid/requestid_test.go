package requestid

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestValid(t *testing.T) {
	t.Parallel()
	for _, id := range []string{"a", "abc-DEF_0.9", strings.Repeat("x", MaxLength)} {
		require.True(t, Valid(id), id)
	}
	for _, id := range []string{"", strings.Repeat("x", MaxLength+1), "a b", "a/b", "ü", "a\x00", "a\n"} {
		require.False(t, Valid(id), "%q", id)
	}
	require.Regexp(t, `^[0-9a-f]{32}$`, New())
	require.NotEqual(t, New(), New())
	require.Equal(t, "kept-1", From(With(t.Context(), "kept-1")))
	require.Regexp(t, `^[0-9a-f]{32}$`, From(With(t.Context(), "not kept")))
	require.Empty(t, From(t.Context()))
}
