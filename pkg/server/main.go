package server

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/tallyhq/tally/pkg/config"
)

// Main is the whole main function of a service: it reads the configuration from the environment
// with load, listens on the gRPC address the configuration names, and runs the service until
// SIGINT or SIGTERM, logging JSON at TALLY_LOG_LEVEL. It exits with status 2 on a bad
// configuration, printing one line naming every problem, and 1 when the service fails.
func Main[C any](name string, load func(*config.Env) (C, error), grpcAddr func(C) string,
	run func(context.Context, C, net.Listener, *slog.Logger) error) {
	env := config.FromOS()
	logger := NewLogger(env.String("TALLY_LOG_LEVEL", "info"))
	cfg, err := load(env)
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: configuration: %s\n", name, strings.ReplaceAll(err.Error(), "\n", "; "))
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	lis, err := (&net.ListenConfig{}).Listen(ctx, "tcp", grpcAddr(cfg))
	if err != nil {
		logger.Error("listen failed", "service", name, "addr", grpcAddr(cfg), "err", err)
		os.Exit(1)
	}
	if err := run(ctx, cfg, lis, logger); err != nil {
		logger.Error("service stopped", "service", name, "err", err)
		stop()
		os.Exit(1)
	}
}
