package payment

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestParseLedgerCursor(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in, out string
		ok      bool
	}{
		{"", "", true},
		{"main:42", "main:42", true},
		{"b:9,a:3", "a:3,b:9", true},
		{"a:0", "a:0", true},
		{"42", "", false},
		{"a:-1", "", false},
		{":3", "", false},
		{"a:1,a:2", "", false},
		{"a:x", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()
			c, err := ParseLedgerCursor(tt.in)
			if !tt.ok {
				require.ErrorIs(t, err, ErrInvalid)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.out, c.String())
		})
	}
}
