// Command notifications serves tally.notifications.v1.NotificationsService: member notification
// settings, the low-credit alert evaluated from the ledger's events, and email delivery.
package main

import (
	"github.com/tallyhq/tally/pkg/server"
	"github.com/tallyhq/tally/services/notifications/internal/service"
)

func main() {
	server.Main(server.Service[service.Config]{
		Name: "notifications", Load: service.Load, Run: service.Run, Migrate: service.Migrate,
		GRPCAddr: func(c service.Config) string { return c.GRPCAddr },
	})
}
