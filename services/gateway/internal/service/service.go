// Package service is the gateway's composition root: configuration → the REST handler (package
// gateway) with sign-in, sessions, console files and CORS → the HTTP server. cmd/gateway is a
// three-line main around Load and Run.
package service

import (
	"context"
	"errors"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/tallyhq/tally/pkg/config"
	"github.com/tallyhq/tally/pkg/server"
	"github.com/tallyhq/tally/pkg/telemetry"
	"github.com/tallyhq/tally/services/gateway/internal/gateway"
)

// Config is the whole gateway configuration (the README's configuration table).
type Config struct {
	// Addr is the HTTP listen address (TALLY_GATEWAY_HTTP_ADDR).
	Addr string
	// MetricsAddr serves /metrics (TALLY_GATEWAY_METRICS_ADDR); empty serves none.
	MetricsAddr string
	Gateway     gateway.Config
}

// Load reads the configuration from env; every problem is reported at once.
func Load(env *config.Env, logger *slog.Logger) (Config, error) {
	limits, limitsErr := server.LoadHTTPLimits(env)
	web := loadWeb(env, logger)
	cfg := Config{
		Addr:        env.String("TALLY_GATEWAY_HTTP_ADDR", ":8080"),
		MetricsAddr: env.String("TALLY_GATEWAY_METRICS_ADDR", ""),
		Gateway: gateway.Config{
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
		},
	}
	return cfg, errors.Join(env.Err(), limitsErr)
}

// Run serves the gateway on cfg.Addr, and its metrics on cfg.MetricsAddr, until ctx is done.
func Run(ctx context.Context, cfg Config, logger *slog.Logger) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var reg *prometheus.Registry
	if cfg.MetricsAddr != "" {
		reg = prometheus.NewRegistry()
		reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
		cfg.Gateway.Metrics = reg
	}
	tel, err := telemetry.Start(ctx, "gateway")
	if err != nil {
		return err
	}
	defer func() { _ = tel.Shutdown(ctx) }()
	cfg.Gateway.Telemetry = tel
	handler, closeConns, err := gateway.New(ctx, cfg.Gateway)
	if err != nil {
		return err
	}
	defer closeConns()
	metrics := make(chan error, 1)
	go func() {
		err := server.ServeMetrics(ctx, cfg.MetricsAddr, reg, logger)
		if err != nil {
			cancel() // the gateway stops with its metrics server
		}
		metrics <- err
	}()
	srv := cfg.Gateway.Limits.Server(cfg.Addr, handler, logger)
	err = server.ServeHTTP(ctx, srv, logger)
	cancel()
	return errors.Join(err, <-metrics)
}
