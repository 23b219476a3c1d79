package server_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	ledgerv1 "github.com/tallyhq/tally/pkg/gen/tally/ledger/v1"
	"github.com/tallyhq/tally/pkg/server"
)

// events is an ordered log of what happened.
type events struct {
	mu  sync.Mutex
	log []string
}

func (e *events) add(s string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.log = append(e.log, s)
}

func (e *events) all() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]string(nil), e.log...)
}

// untilDone is a worker that runs until its context is done and returns the context's error.
func untilDone(ev *events, name string) func(context.Context) error {
	return func(ctx context.Context) error {
		<-ctx.Done()
		ev.add(name + " stopped")
		return ctx.Err()
	}
}

// TestRunStopsAfterServeWorkersLast holds a call in flight across the shutdown and requires the
// AfterServe worker alive until the call is answered, the others stopped with the servers, the
// HTTP listener closed, and no error from a clean shutdown.
func TestRunStopsAfterServeWorkersLast(t *testing.T) {
	t.Parallel()
	srv, lis, s := newErrorsServer(t, nil, nil)
	ev := &events{}
	afterStarted := make(chan context.Context, 1)
	reconcilerStopped := make(chan struct{})
	after := func(ctx context.Context) error {
		afterStarted <- ctx
		return untilDone(ev, "committer")(ctx)
	}
	httpLis, err := (&net.ListenConfig{}).Listen(t.Context(), "tcp", "127.0.0.1:0")
	require.NoError(t, err)
	mux := http.NewServeMux()
	mux.HandleFunc("/ok", func(http.ResponseWriter, *http.Request) {})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		done <- server.Run(ctx, server.RunConfig{GRPC: srv, Listener: lis, Logger: quiet,
			HTTP: []server.HTTPServer{{Server: &http.Server{Handler: mux}, Listener: httpLis}}, //nolint:gosec // test server
			Workers: []server.Worker{
				{Name: "committer", Run: after, AfterServe: true},
				{Name: "reconciler", Run: func(ctx context.Context) error {
					defer close(reconcilerStopped)
					return untilDone(ev, "reconciler")(ctx)
				}},
			}})
	}()
	afterCtx := <-afterStarted
	resp, err := http.Get("http://" + httpLis.Addr().String() + "/ok") //nolint:noctx // test
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())

	answered := make(chan error, 1)
	go func() {
		_, err := s.client.GetBalance(t.Context(), &ledgerv1.GetBalanceRequest{OrgId: "slow"})
		answered <- err
	}()
	<-s.ledger.entered
	s.ledger.hook = func() error {
		if afterCtx.Err() != nil {
			return errors.New("the committer stopped before the call was answered")
		}
		ev.add("call answered")
		return nil
	}
	cancel()
	<-reconcilerStopped // stops with the servers, while the call is in flight
	require.Equal(t, []string{"reconciler stopped"}, ev.all(), "the committer outlives the in-flight call")
	close(s.ledger.release)
	require.NoError(t, <-answered)
	require.NoError(t, <-done)
	require.Equal(t, []string{"reconciler stopped", "call answered", "committer stopped"}, ev.all())
	_, err = net.Dial("tcp", httpLis.Addr().String()) //nolint:noctx // test
	require.Error(t, err, "the HTTP listener is closed")
}

// TestRunFirstErrorWins requires the first failure returned, naming its worker, and everything
// else stopped, whichever kind of worker fails.
func TestRunFirstErrorWins(t *testing.T) {
	t.Parallel()
	errFirst, errLater := errors.New("lost the lease"), errors.New("stopped badly")
	for _, afterServe := range []bool{false, true} {
		srv, lis, _ := newErrorsServer(t, nil, nil)
		failed := make(chan struct{})
		err := server.Run(t.Context(), server.RunConfig{GRPC: srv, Listener: lis, Logger: quiet,
			Workers: []server.Worker{
				{Name: "follower", AfterServe: afterServe, Run: func(context.Context) error { close(failed); return errFirst }},
				{Name: "sweeper", Run: func(ctx context.Context) error {
					<-failed
					<-ctx.Done()
					return errLater
				}},
			}})
		require.ErrorIs(t, err, errFirst, "after serve %v", afterServe)
		require.NotErrorIs(t, err, errLater)
		require.EqualError(t, err, "follower: lost the lease")
	}
}

// TestRunRefusesAnIncompleteConfig requires the listeners closed when Run cannot start.
func TestRunRefusesAnIncompleteConfig(t *testing.T) {
	t.Parallel()
	lis, err := (&net.ListenConfig{}).Listen(t.Context(), "tcp", "127.0.0.1:0")
	require.NoError(t, err)
	httpLis, err := (&net.ListenConfig{}).Listen(t.Context(), "tcp", "127.0.0.1:0")
	require.NoError(t, err)
	err = server.Run(t.Context(), server.RunConfig{Listener: lis, Logger: quiet,
		HTTP: []server.HTTPServer{{Server: &http.Server{}, Listener: httpLis}}}) //nolint:gosec // test server
	require.EqualError(t, err, "server: run needs a gRPC server, its listener and a logger")
	_, err = lis.Accept()
	require.Error(t, err, "closed")
	_, err = httpLis.Accept()
	require.Error(t, err, "closed")

	srv, grpcLis, _ := newErrorsServer(t, nil, nil)
	err = server.Run(t.Context(), server.RunConfig{GRPC: srv, Listener: grpcLis, Logger: quiet, Workers: []server.Worker{{Name: "sweeper"}}})
	require.EqualError(t, err, `server: worker "sweeper" needs a name and a Run function`)
}

// TestRunServes requires calls served, with CommonErrors alone when the server has no table.
func TestRunServes(t *testing.T) {
	t.Parallel()
	srv, lis, s := newErrorsServer(t, nil, map[string]error{"x": errDomain})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- server.Run(ctx, server.RunConfig{GRPC: srv, Listener: lis, Logger: quiet}) }()
	_, err := s.client.GetBalance(t.Context(), &ledgerv1.GetBalanceRequest{OrgId: "x"})
	require.Equal(t, codes.Internal, status.Code(err), "no table: CommonErrors only")
	cancel()
	require.NoError(t, <-done)
}

// TestRunEndsStreamsAtShutdown follows a stream across the shutdown and requires it ended at
// once with ErrStopping's Unavailable, whether its handler returns nil or its context's error,
// instead of being cut after the shutdown timeout (which answers another status), and Run clean.
func TestRunEndsStreamsAtShutdown(t *testing.T) {
	t.Parallel()
	for _, org := range []string{"watch", "watch-err"} {
		t.Run(org, func(t *testing.T) {
			t.Parallel()
			srv, lis, s := newErrorsServer(t, nil, nil)
			ctx, cancel := context.WithCancel(t.Context())
			done := make(chan error, 1)
			go func() { done <- server.Run(ctx, server.RunConfig{GRPC: srv, Listener: lis, Logger: quiet}) }()
			stream, err := s.client.WatchEvents(t.Context(), &ledgerv1.WatchEventsRequest{OrgId: org})
			require.NoError(t, err)
			ev, err := stream.Recv()
			require.NoError(t, err)
			require.Equal(t, int64(1), ev.GetEvent().GetSequence())
			cancel()
			_, err = stream.Recv()
			st := status.Convert(err)
			require.Equal(t, codes.Unavailable, st.Code(), "%v", err)
			require.Equal(t, server.ErrStopping.Error(), st.Message())
			require.NoError(t, <-done)
		})
	}
}
