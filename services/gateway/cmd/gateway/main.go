// Command gateway serves tally's REST API (grpc-gateway) on TALLY_GATEWAY_HTTP_ADDR, and the
// console: its files (TALLY_CONSOLE_DIR), sign-in and sessions, CORS (internal/service).
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/tallyhq/tally/pkg/config"
	"github.com/tallyhq/tally/pkg/server"
	"github.com/tallyhq/tally/services/gateway/internal/service"
)

func main() {
	env := config.FromOS()
	logger := server.NewLogger(env.String("TALLY_LOG_LEVEL", "info")).With("service", "gateway")
	cfg, err := service.Load(env, logger)
	if err != nil {
		// One line, whatever the number of problems.
		fmt.Fprintln(os.Stderr, "gateway: configuration:", strings.ReplaceAll(err.Error(), "\n", "; "))
		os.Exit(2)
	}
	// The gateway has no database: `gateway migrate` (like every service's) only validates the
	// configuration, so one migration step can run every binary.
	switch args := os.Args[1:]; {
	case len(args) == 1 && args[0] == "migrate":
		logger.Info("no database to migrate")
		return
	case len(args) > 0:
		fmt.Fprintf(os.Stderr, "gateway: unknown arguments %q; usage: gateway [migrate]\n", strings.Join(args, " "))
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := service.Run(ctx, cfg, logger); err != nil {
		logger.Error("gateway stopped", "err", err)
		stop()
		os.Exit(1)
	}
}
