package signin_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tallyhq/tally/services/gateway/internal/signin"
)

func TestSafeReturnTo(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"", "/"},
		{"/", "/"},
		{"/billing", "/billing"},
		{"/billing?checkout=success&session_id=cs_1", "/billing?checkout=success&session_id=cs_1"},
		{"/settings/notifications", "/settings/notifications"},
		{"billing", "/"},
		{"//evil.test", "/"},
		{"//evil.test/billing", "/"},
		{"///evil.test", "/"},
		{`/\evil.test`, "/"},
		{"https://evil.test/", "/"},
		{"javascript:alert(1)", "/"},
		{"/%2F%2Fevil.test", "/"},
		{"/a\r\nLocation: https://evil.test", "/"},
		{"/a\tb", "/"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			require.Equal(t, tt.want, signin.SafeReturnTo(tt.in))
		})
	}
}
