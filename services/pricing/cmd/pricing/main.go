// Command pricing serves tally.pricing.v1.PricingService (configuration: see the README).
package main

import (
	"github.com/tallyhq/tally/pkg/server"
	"github.com/tallyhq/tally/services/pricing/internal/service"
)

func main() {
	server.Main(server.Service[service.Config]{
		Name: "pricing", Load: service.Load, Run: service.Run, Migrate: service.Migrate,
		GRPCAddr: func(c service.Config) string { return c.GRPCAddr },
	})
}
