// Command ledger serves tally.ledger.v1.LedgerService.
package main

import (
	"context"

	"github.com/redis/go-redis/v9"

	"github.com/tallyhq/tally/pkg/server"
	"github.com/tallyhq/tally/services/ledger/internal/service"
)

func main() {
	// go-redis logs every failed dial of its own; the ledger logs a Redis outage once, as a
	// warning, and says when the cache is writable again.
	redis.SetLogger(discardRedisLog{})
	server.Main(server.Service[service.Config]{
		Name: "ledger", Load: service.Load, Run: service.Run, Migrate: service.Migrate,
		GRPCAddr: func(c service.Config) string { return c.GRPCAddr },
	})
}

type discardRedisLog struct{}

func (discardRedisLog) Printf(context.Context, string, ...any) {}
