package grpcapi_test

import (
	"testing"

	notificationsv1 "github.com/tallyhq/tally/pkg/gen/tally/notifications/v1"
	"github.com/tallyhq/tally/pkg/server/servertest"
	"github.com/tallyhq/tally/services/notifications/internal/grpcapi"
)

// TestOpenAPIDocumentFollowsThePolicy: every REST route of the service in the committed OpenAPI
// document is in the auth policy, public exactly when the policy admits callers without a token.
func TestOpenAPIDocumentFollowsThePolicy(t *testing.T) {
	t.Parallel()
	servertest.CheckOpenAPIPolicy(t, notificationsv1.NotificationsService_ServiceDesc.ServiceName, grpcapi.Policy())
}
