// Command ledger serves tally.ledger.v1.LedgerService.
package main

import (
	"github.com/tallyhq/tally/pkg/server"
	"github.com/tallyhq/tally/services/ledger/service"
)

func main() {
	server.Main("ledger", service.Load, func(c service.Config) string { return c.GRPCAddr }, service.Run)
}
