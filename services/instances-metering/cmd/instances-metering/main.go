// Command instances-metering serves tally.instances.v1.InstanceMeteringService: it charges rented
// instances per billing period through the ledger.
package main

import (
	"github.com/tallyhq/tally/pkg/server"
	"github.com/tallyhq/tally/services/instances-metering/internal/service"
)

func main() {
	server.Main(server.Service[service.Config]{
		Name: service.ServiceName, Load: service.Load, Run: service.Run, Migrate: service.Migrate,
		GRPCAddr: func(c service.Config) string { return c.GRPCAddr },
	})
}
