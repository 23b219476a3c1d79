package grpcapi_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tallyhq/tally/pkg/gen/openapi"
	notificationsv1 "github.com/tallyhq/tally/pkg/gen/tally/notifications/v1"
	"github.com/tallyhq/tally/services/notifications/internal/grpcapi"
)

// TestOpenAPIDocumentFollowsThePolicy: every REST route of the service in the committed OpenAPI
// document is in the auth policy, and it is marked public (`security: []`) exactly when the
// policy admits callers without a token.
func TestOpenAPIDocumentFollowsThePolicy(t *testing.T) {
	t.Parallel()
	policy := grpcapi.Policy()
	require.NoError(t, openapi.CheckPolicy(notificationsv1.NotificationsService_ServiceDesc.ServiceName, func(fullMethod string) (listed, public bool) {
		rule, ok := policy[fullMethod]
		return ok, rule.Public
	}))
}
