// Command ledger serves tally.ledger.v1.LedgerService.
package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/signal"
	"syscall"

	"github.com/tallyhq/tally/pkg/config"
	"github.com/tallyhq/tally/pkg/server"
	"github.com/tallyhq/tally/services/ledger/service"
)

func main() {
	env := config.FromOS()
	logger := server.NewLogger(env.String("TALLY_LOG_LEVEL", "info")).With("service", "ledger")
	cfg, err := service.Load(env)
	if err != nil {
		fmt.Fprintln(os.Stderr, "ledger: configuration:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	lis, err := net.Listen("tcp", cfg.GRPCAddr)
	if err != nil {
		logger.Error("listen failed", "addr", cfg.GRPCAddr, "err", err)
		os.Exit(1)
	}
	if err := service.Run(ctx, cfg, lis, logger); err != nil {
		logger.Error("ledger stopped", "err", err)
		os.Exit(1)
	}
}
