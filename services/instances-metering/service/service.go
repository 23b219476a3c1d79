// Package service forwards to internal/service for the importers outside this module that have
// not moved to meteringtest yet (the gateway's restfuzz stack, the benches). Delete it when none
// is left: internal/service is the composition root, meteringtest the harness.
//
// Deprecated: use meteringtest.New / meteringtest.Start.
package service

import (
	"context"
	"log/slog"
	"net"

	"github.com/tallyhq/tally/pkg/config"
	"github.com/tallyhq/tally/services/instances-metering/internal/service"
)

// ServiceName is service.ServiceName.
const ServiceName = service.ServiceName

// Config is service.Config.
type Config = service.Config

// Load is service.Load.
func Load(e *config.Env) (Config, error) { return service.Load(e) }

// Run is service.Run.
func Run(ctx context.Context, cfg Config, lis net.Listener, logger *slog.Logger) error {
	return service.Run(ctx, cfg, lis, logger)
}
