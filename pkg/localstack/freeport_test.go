package localstack

import (
	"net"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"
)

// FreePort picks below the kernel's ephemeral range, where no outgoing connection can be given
// the port between the check and the server's bind, and the port can be bound.
func TestFreePortIsBelowTheEphemeralRange(t *testing.T) {
	t.Parallel()
	lo, hi := belowEphemeralRange()
	if hi <= lo {
		t.Skip("no room below the ephemeral range on this machine")
	}
	for range 20 {
		port, err := FreePort()
		require.NoError(t, err)
		require.GreaterOrEqual(t, port, lo)
		require.Less(t, port, hi)
		l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
		require.NoError(t, err)
		require.NoError(t, l.Close())
	}
}
