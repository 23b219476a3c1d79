package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
)

// Worker is a background loop of a service, run by Run until its context is done.
type Worker struct {
	Name string
	Run  func(context.Context) error
	// AfterServe workers are stopped only once the gRPC server has stopped, so calls in flight
	// during the graceful stop can still use them (the ledger's group committer).
	AfterServe bool
}

// HTTPServer is an HTTP server Run serves; a nil Listener listens on Server.Addr.
type HTTPServer struct {
	Server   *http.Server
	Listener net.Listener
}

// RunConfig is what Run serves.
type RunConfig struct {
	GRPC        *Server
	Listener    net.Listener // of GRPC
	MetricsAddr string       // "" serves no metrics
	HTTP        []HTTPServer
	Workers     []Worker
	Logger      *slog.Logger
}

// Run is the shared tail of every service: it serves GRPC on Listener, the metrics of GRPC on
// MetricsAddr, every HTTP server and every worker until ctx is done or one of them fails, then
// stops them all gracefully and returns the first error. Workers stop with the servers, except
// AfterServe workers, which stop after the gRPC server's graceful stop. A worker returning its
// context's error on shutdown is not a failure; a worker returning nil early stops alone.
// Streaming handlers need no worker of their own to end at shutdown: their stream's context is
// done as soon as the gRPC server starts stopping, and the stream ends Unavailable (ErrStopping).
func Run(ctx context.Context, cfg RunConfig) error {
	if err := cfg.validate(); err != nil {
		closeListeners(cfg)
		return err
	}
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	first := &firstError{cancel: cancel}
	// afterCtx lives until the gRPC server has stopped.
	afterCtx, stopAfter := context.WithCancel(context.WithoutCancel(ctx))
	defer stopAfter()
	var servers, after sync.WaitGroup
	for _, w := range cfg.Workers {
		if w.AfterServe {
			first.run(&after, func() error { return runWorker(afterCtx, w) })
		} else {
			first.run(&servers, func() error { return runWorker(runCtx, w) })
		}
	}
	first.run(&servers, func() error {
		defer stopAfter()
		return cfg.GRPC.Serve(runCtx, cfg.Listener)
	})
	first.run(&servers, func() error { return ServeMetrics(runCtx, cfg.MetricsAddr, cfg.GRPC.Registry(), cfg.Logger) })
	for _, h := range cfg.HTTP {
		first.run(&servers, func() error { return serveHTTP(runCtx, h, cfg.Logger) })
	}
	servers.Wait()
	stopAfter()
	after.Wait()
	return first.err
}

// firstError keeps the first error of a set of goroutines and cancels them all on it.
type firstError struct {
	once   sync.Once
	err    error
	cancel context.CancelFunc
}

// run runs f in a goroutine of wg, recording its error.
func (f *firstError) run(wg *sync.WaitGroup, fn func() error) {
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := fn(); err != nil {
			f.once.Do(func() { f.err = err; f.cancel() })
		}
	}()
}

// validate returns what cfg lacks.
func (cfg RunConfig) validate() error {
	if cfg.GRPC == nil || cfg.Listener == nil || cfg.Logger == nil {
		return errors.New("server: run needs a gRPC server, its listener and a logger")
	}
	for _, w := range cfg.Workers {
		if w.Name == "" || w.Run == nil {
			return fmt.Errorf("server: worker %q needs a name and a Run function", w.Name)
		}
	}
	for _, h := range cfg.HTTP {
		if h.Server == nil {
			return errors.New("server: an HTTP entry has no server")
		}
	}
	return nil
}

// runWorker runs w until ctx is done; its context's error at shutdown is no failure.
func runWorker(ctx context.Context, w Worker) error {
	err := w.Run(ctx)
	if err == nil || (ctx.Err() != nil && errors.Is(err, ctx.Err())) {
		return nil
	}
	return fmt.Errorf("%s: %w", w.Name, err)
}

// serveHTTP serves h until ctx is done.
func serveHTTP(ctx context.Context, h HTTPServer, logger *slog.Logger) error {
	if h.Listener == nil {
		return ServeHTTP(ctx, h.Server, logger)
	}
	return ServeHTTPOn(ctx, h.Server, h.Listener, logger)
}

// closeListeners closes the listeners of cfg that Run will not serve.
func closeListeners(cfg RunConfig) {
	if cfg.Listener != nil {
		_ = cfg.Listener.Close()
	}
	for _, h := range cfg.HTTP {
		if h.Listener != nil {
			_ = h.Listener.Close()
		}
	}
}
