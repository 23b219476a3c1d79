// Command tally-local runs one local server for development until it is
// interrupted, printing its connection URL on stdout:
//
//	tally-local postgres --dir .data/pg [--port N] [--durable]  # DATABASE_URL=...
//	tally-local redis --dir .data/redis [--port N]              # REDIS_URL=...
//
// A postgres data dir is initialised on first use and reused afterwards. On
// SIGINT or SIGTERM the server is stopped and the command exits.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/tallyhq/tally/pkg/localstack"
)

// stopTimeout bounds stopping the server after a signal.
const stopTimeout = time.Minute

// server is what tally-local runs and stops.
type server interface {
	Stop(ctx context.Context) error
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if err := run(ctx, os.Args[1:], os.Stdout, logger); err != nil {
		fmt.Fprintf(os.Stderr, "tally-local: %v\n", err)
		stop()
		os.Exit(1)
	}
}

// run starts the server named by args[0], prints its URL to out and blocks
// until ctx is cancelled, then stops the server.
func run(ctx context.Context, args []string, out io.Writer, logger *slog.Logger) error {
	if len(args) == 0 {
		return errors.New("usage: tally-local postgres|redis --dir DIR [--port N] [--durable]")
	}
	srv, line, err := start(ctx, args[0], args[1:], logger)
	if err != nil {
		return err
	}
	if _, err := fmt.Fprintln(out, line); err != nil {
		_ = srv.Stop(context.Background())
		return fmt.Errorf("printing URL: %w", err)
	}
	<-ctx.Done()
	logger.Info("stopping", "server", args[0])
	sctx, cancel := context.WithTimeout(context.Background(), stopTimeout)
	defer cancel()
	if err := srv.Stop(sctx); err != nil {
		return fmt.Errorf("stopping %s: %w", args[0], err)
	}
	return nil
}

// start parses the flags of command and starts its server, returning the
// NAME=URL line to print.
func start(ctx context.Context, command string, args []string, logger *slog.Logger) (server, string, error) {
	fs := flag.NewFlagSet("tally-local "+command, flag.ContinueOnError)
	dir := fs.String("dir", "", "data directory (required)")
	port := fs.Int("port", 0, "TCP port on 127.0.0.1 (0: previous or free port)")
	var durable *bool
	if command == "postgres" {
		durable = fs.Bool("durable", false, "keep fsync and synchronous_commit on")
	}
	if err := fs.Parse(args); err != nil {
		return nil, "", err
	}
	if *dir == "" {
		return nil, "", fmt.Errorf("%s: --dir is required", command)
	}

	switch command {
	case "postgres":
		pg, err := localstack.StartPostgres(ctx, localstack.PostgresConfig{Dir: *dir, Port: *port, Durable: *durable, Logger: logger})
		if err != nil {
			return nil, "", err
		}
		return pg, "DATABASE_URL=" + pg.URL(), nil
	case "redis":
		r, err := localstack.StartRedis(ctx, localstack.RedisConfig{Dir: *dir, Port: *port, Logger: logger})
		if err != nil {
			return nil, "", err
		}
		return r, "REDIS_URL=" + r.URL(), nil
	default:
		return nil, "", fmt.Errorf("unknown server %q: want postgres or redis", command)
	}
}
