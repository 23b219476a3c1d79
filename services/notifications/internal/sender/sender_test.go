package sender_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tallyhq/tally/services/notifications/internal/sender"
)

func TestParseTLSMode(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]sender.TLSMode{"none": sender.TLSNone, "STARTTLS": sender.TLSStartTLS, "tls": sender.TLSImplicit} {
		got, err := sender.ParseTLSMode(in)
		require.NoError(t, err)
		require.Equal(t, want, got)
	}
	_, err := sender.ParseTLSMode("ssl3")
	require.Error(t, err)
}
