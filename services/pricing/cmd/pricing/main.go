// Command pricing serves tally.pricing.v1.PricingService (configuration: see the README).
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
	"github.com/tallyhq/tally/services/pricing/service"
)

func main() {
	env := config.FromOS()
	logger := server.NewLogger(env.String("TALLY_LOG_LEVEL", "info"))
	cfg, err := service.Load(env)
	if err != nil {
		fmt.Fprintln(os.Stderr, "pricing: configuration:", err)
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
		logger.Error("pricing stopped", "err", err)
		os.Exit(1)
	}
}
