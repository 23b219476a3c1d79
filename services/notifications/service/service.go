// Package service is the old public path of the notifications composition root, kept only so
// that services/gateway/restfuzz keeps compiling until it starts replicas with
// notificationstest. Nothing in this module uses it; delete it with that switch.
//
// Deprecated: use notificationstest (tests) or cmd/notifications.
package service

import (
	"context"
	"log/slog"
	"net"

	"github.com/tallyhq/tally/pkg/config"
	"github.com/tallyhq/tally/services/notifications/internal/service"
)

// Schema is the PostgreSQL schema of the service.
const Schema = service.Schema

// Config is the service's configuration.
type Config = service.Config

// Load reads the configuration from e.
func Load(e *config.Env) (Config, error) { return service.Load(e) }

// Run serves the notifications service on lis until ctx is done.
func Run(ctx context.Context, cfg Config, lis net.Listener, logger *slog.Logger) error {
	return service.Run(ctx, cfg, lis, logger)
}
