package testenv

import (
	"net"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

// Stalled is a TCP server on 127.0.0.1 that accepts connections and never says a word: a
// dependency (ledger, SMTP server) that hangs.
type Stalled struct {
	Addr string
	// Accepted gets one value per accepted connection (up to 1024 not yet read).
	Accepted <-chan struct{}
}

// StartStalled starts a Stalled server; it and its connections close when t ends.
func StartStalled(t testing.TB) *Stalled {
	t.Helper()
	lis, err := (&net.ListenConfig{}).Listen(t.Context(), "tcp", "127.0.0.1:0")
	require.NoError(t, err)
	accepted := make(chan struct{}, 1024)
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := lis.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			select {
			case accepted <- struct{}{}:
			default: // nobody counts that far
			}
		}
	}()
	t.Cleanup(func() {
		_ = lis.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			_ = c.Close()
		}
	})
	return &Stalled{Addr: lis.Addr().String(), Accepted: accepted}
}
