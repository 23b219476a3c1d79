// Command payments serves tally.payments.v1.PaymentsService and, without Stripe keys, the local
// test-mode checkout page.
package main

import (
	"github.com/tallyhq/tally/pkg/server"
	"github.com/tallyhq/tally/services/payments/internal/service"
)

func main() {
	server.Main(server.Service[service.Config]{
		Name: "payments", Load: service.Load, Run: service.Run, Migrate: service.Migrate,
		GRPCAddr: func(c service.Config) string { return c.GRPCAddr },
	})
}
