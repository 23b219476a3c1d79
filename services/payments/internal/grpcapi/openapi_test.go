package grpcapi_test

import (
	"testing"

	paymentsv1 "github.com/tallyhq/tally/pkg/gen/tally/payments/v1"
	"github.com/tallyhq/tally/pkg/server/servertest"
	"github.com/tallyhq/tally/services/payments/internal/grpcapi"
)

// TestOpenAPIDocumentFollowsThePolicy: every REST route of the service in the committed OpenAPI
// document is in the auth policy, public exactly when the policy admits callers without a token.
func TestOpenAPIDocumentFollowsThePolicy(t *testing.T) {
	t.Parallel()
	servertest.CheckOpenAPIPolicy(t, paymentsv1.PaymentsService_ServiceDesc.ServiceName, grpcapi.Policy())
}
