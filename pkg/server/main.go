package server

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/tallyhq/tally/pkg/config"
)

// Service is what Main needs of a service: how to load its configuration, where it listens, how
// it runs and how its database is migrated.
type Service[C any] struct {
	Name     string
	Load     func(*config.Env) (C, error)
	GRPCAddr func(C) string
	Run      func(context.Context, C, net.Listener, *slog.Logger) error
	// Migrate applies the service's migrations and returns (`<name> migrate`); nil for a service
	// without a database, whose migrate command does nothing.
	Migrate func(context.Context, C, *slog.Logger) error
}

// Main is the whole main function of a service: it reads the configuration from the environment,
// then without arguments listens on the gRPC address the configuration names and runs the
// service until SIGINT or SIGTERM; with the argument `migrate` it applies the service's
// migrations and exits (the deployment's migration step, before replicas started with
// TALLY_MIGRATE_ON_START=false). It logs JSON at TALLY_LOG_LEVEL, and exits with status 2 on a
// bad configuration or command line, printing one line naming every problem, and 1 when the
// service or its migrations fail.
func Main[C any](s Service[C]) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := s.Exec(ctx, os.Args[1:], config.FromOS(), os.Stderr)
	stop()
	os.Exit(code)
}

// Exec is Main without the process: it runs the command args names with the configuration of env
// until ctx is done, and returns the exit status; problems with the configuration or the command
// line go to stderr.
func (s Service[C]) Exec(ctx context.Context, args []string, env *config.Env, stderr io.Writer) int {
	logger := NewLogger(env.String("TALLY_LOG_LEVEL", "info"))
	migrate := len(args) == 1 && args[0] == "migrate"
	if len(args) > 0 && !migrate {
		fmt.Fprintf(stderr, "%s: unknown arguments %q; usage: %s [migrate]\n", s.Name, strings.Join(args, " "), s.Name)
		return 2
	}
	cfg, err := s.Load(env)
	if err != nil {
		fmt.Fprintf(stderr, "%s: configuration: %s\n", s.Name, strings.ReplaceAll(err.Error(), "\n", "; "))
		return 2
	}
	if migrate {
		return s.migrate(ctx, cfg, logger)
	}
	lis, err := (&net.ListenConfig{}).Listen(ctx, "tcp", s.GRPCAddr(cfg))
	if err != nil {
		logger.Error("listen failed", "service", s.Name, "addr", s.GRPCAddr(cfg), "err", err)
		return 1
	}
	if err := s.Run(ctx, cfg, lis, logger); err != nil {
		logger.Error("service stopped", "service", s.Name, "err", err)
		return 1
	}
	return 0
}

func (s Service[C]) migrate(ctx context.Context, cfg C, logger *slog.Logger) int {
	if s.Migrate == nil {
		logger.Info("no database to migrate", "service", s.Name)
		return 0
	}
	if err := s.Migrate(ctx, cfg, logger); err != nil {
		logger.Error("migrations failed", "service", s.Name, "err", err)
		return 1
	}
	logger.Info("migrations applied", "service", s.Name)
	return 0
}
