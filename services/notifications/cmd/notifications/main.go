// Command notifications serves tally.notifications.v1.NotificationsService: member notification
// settings, the low-credit alert evaluated from the ledger's events, and email delivery.
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
	"github.com/tallyhq/tally/services/notifications/service"
)

func main() {
	env := config.FromOS()
	logger := server.NewLogger(env.String("TALLY_LOG_LEVEL", "info")).With("service", "notifications")
	cfg, err := service.Load(env)
	if err != nil {
		fmt.Fprintln(os.Stderr, "notifications: configuration:", err)
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
		logger.Error("notifications stopped", "err", err)
		os.Exit(1)
	}
}
