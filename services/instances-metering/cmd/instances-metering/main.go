// Command instances-metering serves tally.instances.v1.InstanceMeteringService: it charges rented
// instances per billing period through the ledger.
package main

import (
	"github.com/tallyhq/tally/pkg/server"
	"github.com/tallyhq/tally/services/instances-metering/internal/service"
)

func main() {
	server.Main(service.ServiceName, service.Load, func(c service.Config) string { return c.GRPCAddr }, service.Run)
}
