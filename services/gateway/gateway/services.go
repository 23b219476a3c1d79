package gateway

import (
	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc"
)

// extraRegistrations lists the routes of the services other than the ledger.
func extraRegistrations(_ Config) []registration {
	return nil
}

// registerExtraRoutes adds hand-written routes (the Stripe webhook).
func registerExtraRoutes(_ *runtime.ServeMux, _ Config, _ []*grpc.ClientConn) error {
	return nil
}
