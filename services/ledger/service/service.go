// Package service forwards to the ledger's composition root, internal/service, for the
// benchmarks that still start a ledger through it (cmd/ledger-bench, cmd/usage-bench and the
// instances-metering bench).
//
// Deprecated: start a ledger with ledgertest.New (or, inside the ledger module, use
// internal/service). This package goes once the benchmarks no longer import it.
package service

import (
	"context"
	"log/slog"
	"net"

	"github.com/tallyhq/tally/pkg/config"
	"github.com/tallyhq/tally/services/ledger/internal/service"
)

// Config is internal/service.Config.
type Config = service.Config

// Load is internal/service.Load.
func Load(e *config.Env) (Config, error) { return service.Load(e) }

// Run is internal/service.Run.
func Run(ctx context.Context, cfg Config, lis net.Listener, logger *slog.Logger) error {
	return service.Run(ctx, cfg, lis, logger)
}
