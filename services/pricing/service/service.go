// Package service forwards to internal/service for the importers outside this module that have
// not moved to pricingtest yet (the gateway's restfuzz stack, the benches). Delete it when none
// is left: internal/service is the composition root, pricingtest the harness.
//
// Deprecated: use pricingtest.New / pricingtest.Start.
package service

import (
	"context"
	"log/slog"
	"net"

	"github.com/tallyhq/tally/pkg/config"
	"github.com/tallyhq/tally/services/pricing/internal/service"
)

// Config is service.Config.
type Config = service.Config

// Load is service.Load.
func Load(e *config.Env) (Config, error) { return service.Load(e) }

// Run is service.Run.
func Run(ctx context.Context, cfg Config, lis net.Listener, logger *slog.Logger) error {
	return service.Run(ctx, cfg, lis, logger)
}
