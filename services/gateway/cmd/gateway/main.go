// Command gateway serves tally's REST API (grpc-gateway) on TALLY_GATEWAY_HTTP_ADDR, and the
// console: its files (TALLY_CONSOLE_DIR), sign-in and sessions, CORS (see web.go).
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/tallyhq/tally/pkg/config"
	"github.com/tallyhq/tally/pkg/server"
	"github.com/tallyhq/tally/services/gateway/gateway"
)

func main() {
	env := config.FromOS()
	logger := server.NewLogger(env.String("TALLY_LOG_LEVEL", "info")).With("service", "gateway")
	addr := env.String("TALLY_GATEWAY_HTTP_ADDR", ":8080")
	limits, limitsErr := server.LoadHTTPLimits(env)
	web := loadWeb(env, logger)
	cfg := gateway.Config{
		LedgerAddr:        env.String("TALLY_LEDGER_ADDR", "localhost:9091"),
		PricingAddr:       env.String("TALLY_PRICING_ADDR", "localhost:9092"),
		PaymentsAddr:      env.String("TALLY_PAYMENTS_ADDR", "localhost:9093"),
		InstancesAddr:     env.String("TALLY_INSTANCES_ADDR", "localhost:9094"),
		NotificationsAddr: env.String("TALLY_NOTIFICATIONS_ADDR", "localhost:9095"),
		Logger:            logger,
		Limits:            limits,
		SignIn:            web.signIn,
		ConsoleDir:        web.consoleDir,
		CORSOrigins:       web.corsOrigins,
	}
	if err := errors.Join(env.Err(), limitsErr); err != nil {
		// One line, whatever the number of problems.
		fmt.Fprintln(os.Stderr, "gateway: configuration:", strings.ReplaceAll(err.Error(), "\n", "; "))
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	handler, closeConns, err := gateway.New(ctx, cfg)
	if err != nil {
		logger.Error("gateway setup failed", "err", err)
		os.Exit(1)
	}
	defer closeConns()
	srv := limits.Server(addr, handler, logger)
	if err := server.ServeHTTP(ctx, srv, logger); err != nil {
		logger.Error("gateway stopped", "err", err)
		os.Exit(1)
	}
}
