package rpcclient_test

import (
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/metadata"

	"github.com/tallyhq/tally/pkg/rpcclient"
	"github.com/tallyhq/tally/pkg/server"
)

// TestWithRequestID requires the context's request id as outgoing metadata, without replacing
// one the caller set itself (the gateway forwarding a browser's).
func TestWithRequestID(t *testing.T) {
	t.Parallel()
	md, _ := metadata.FromOutgoingContext(rpcclient.WithRequestID(t.Context()))
	require.Empty(t, md.Get(server.RequestIDHeader), "no id, nothing sent")

	md, _ = metadata.FromOutgoingContext(rpcclient.WithRequestID(server.WithRequestID(t.Context(), "req-1")))
	require.Equal(t, []string{"req-1"}, md.Get(server.RequestIDHeader))

	set := metadata.AppendToOutgoingContext(server.WithRequestID(t.Context(), "req-1"), server.RequestIDHeader, "browser-9")
	md, _ = metadata.FromOutgoingContext(rpcclient.WithRequestID(set))
	require.Equal(t, []string{"browser-9"}, md.Get(server.RequestIDHeader))
}
