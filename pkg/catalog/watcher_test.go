package catalog

import (
	"context"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	pricingv1 "github.com/tallyhq/tally/pkg/gen/tally/pricing/v1"
)

// scriptedPricing is a PricingService whose WatchCatalog streams send what the test tells them to.
type scriptedPricing struct {
	pricingv1.UnimplementedPricingServiceServer
	conns chan *pricingv1.WatchCatalogRequest
	sends chan *pricingv1.WatchCatalogResponse
	fail  chan error
}

func (s *scriptedPricing) WatchCatalog(req *pricingv1.WatchCatalogRequest, stream grpc.ServerStreamingServer[pricingv1.WatchCatalogResponse]) error {
	s.conns <- req
	for {
		select {
		case m := <-s.sends:
			if err := stream.Send(m); err != nil {
				return err
			}
		case err := <-s.fail:
			return err
		case <-stream.Context().Done():
			return nil
		}
	}
}

func startScripted(t *testing.T) (*scriptedPricing, pricingv1.PricingServiceClient) {
	t.Helper()
	s := &scriptedPricing{
		conns: make(chan *pricingv1.WatchCatalogRequest, 10),
		sends: make(chan *pricingv1.WatchCatalogResponse),
		fail:  make(chan error),
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	g := grpc.NewServer()
	pricingv1.RegisterPricingServiceServer(g, s)
	go func() { _ = g.Serve(lis) }()
	t.Cleanup(g.Stop)
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	return s, pricingv1.NewPricingServiceClient(conn)
}

func snapshotMsg(t *testing.T, version int64, inputPrice string) *pricingv1.WatchCatalogResponse {
	t.Helper()
	c, err := New(version, []ModelVersion{llm(t, "m", "v"+inputPrice, version, epoch, inputPrice, "1")}, nil)
	require.NoError(t, err)
	return &pricingv1.WatchCatalogResponse{CatalogVersion: version, Snapshot: c.Proto()}
}

func nextConn(t *testing.T, s *scriptedPricing) *pricingv1.WatchCatalogRequest {
	t.Helper()
	select {
	case req := <-s.conns:
		return req
	case <-time.After(10 * time.Second):
		t.Fatal("the watcher did not connect")
		return nil
	}
}

func TestWatcherFollowsReconnectsAndIgnoresOlderSnapshots(t *testing.T) {
	t.Parallel()
	s, client := startScripted(t)
	updates := make(chan int64, 10)
	w, err := NewWatcher(WatcherConfig{
		Client: client, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		MinBackoff: time.Millisecond, MaxBackoff: 10 * time.Millisecond,
		OnUpdate: func(c *Catalog) { updates <- c.Version() },
	})
	require.NoError(t, err)
	require.Nil(t, w.Current())
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()

	require.Equal(t, int64(0), nextConn(t, s).GetKnownCatalogVersion())
	notReady, cancelWait := context.WithTimeout(t.Context(), 10*time.Millisecond)
	require.Error(t, w.Ready(notReady), "not ready before a snapshot")
	cancelWait()

	s.sends <- &pricingv1.WatchCatalogResponse{CatalogVersion: 0} // a heartbeat changes nothing
	s.sends <- snapshotMsg(t, 3, "0.5")
	require.NoError(t, w.Ready(t.Context()))
	require.Equal(t, int64(3), <-updates)
	require.Equal(t, int64(3), w.Current().Version())

	// The stream breaks: the watcher reconnects and says which version it holds.
	s.fail <- status.Error(codes.Unavailable, "pricing restarting")
	require.Equal(t, int64(3), nextConn(t, s).GetKnownCatalogVersion())
	require.Equal(t, int64(3), w.Current().Version(), "the last catalog is served while disconnected")

	s.sends <- snapshotMsg(t, 2, "9") // from a lagging replica: ignored
	s.sends <- snapshotMsg(t, 4, "0.7")
	require.Equal(t, int64(4), <-updates)
	v, err := w.Current().Model("m", epoch)
	require.NoError(t, err)
	require.Equal(t, "v0.7", v.ID)

	cancel()
	require.NoError(t, <-done)
}

func TestWatcherReopensASilentStream(t *testing.T) {
	t.Parallel()
	s, client := startScripted(t)
	w, err := NewWatcher(WatcherConfig{
		Client: client, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		MinBackoff: time.Millisecond, IdleTimeout: 50 * time.Millisecond,
	})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	go func() { _ = w.Run(ctx) }()

	nextConn(t, s)
	s.sends <- snapshotMsg(t, 1, "0.5")
	require.NoError(t, w.Ready(t.Context()))
	// No heartbeat arrives: the watcher gives up on the stream and opens a new one.
	require.Equal(t, int64(1), nextConn(t, s).GetKnownCatalogVersion())
}

func TestNewWatcherRequiresClientAndLogger(t *testing.T) {
	t.Parallel()
	_, err := NewWatcher(WatcherConfig{})
	require.Error(t, err)
}
