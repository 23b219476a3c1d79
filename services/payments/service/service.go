// Package service is what remains of the payments service's public composition root while
// other modules' tests still import it (services/gateway: internal/gateway/flow_test.go,
// restfuzz/stack_test.go). The composition root is internal/service; tests outside payments
// start payments with paymentstest. Delete this package once those tests use paymentstest.
//
// Deprecated: use paymentstest.
package service

import (
	"context"
	"log/slog"
	"net"

	"github.com/tallyhq/tally/services/payments/internal/service"
)

// Config is the payments service's configuration (internal/service.Config).
type Config = service.Config

// DevWebhookSecret signs the local test-mode deliveries when STRIPE_WEBHOOK_SECRET is unset.
const DevWebhookSecret = service.DevWebhookSecret

// Run serves the payments service on lis until ctx is done.
func Run(ctx context.Context, cfg Config, lis net.Listener, logger *slog.Logger) error {
	return service.Run(ctx, cfg, lis, logger)
}
