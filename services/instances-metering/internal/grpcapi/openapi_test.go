package grpcapi_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tallyhq/tally/pkg/gen/openapi"
	instancesv1 "github.com/tallyhq/tally/pkg/gen/tally/instances/v1"
	"github.com/tallyhq/tally/services/instances-metering/internal/grpcapi"
)

// TestOpenAPIDocumentFollowsThePolicy: every REST route of the service in the committed OpenAPI
// document is in the auth policy, and it is marked public (`security: []`) exactly when the
// policy admits callers without a token.
func TestOpenAPIDocumentFollowsThePolicy(t *testing.T) {
	t.Parallel()
	policy := grpcapi.Policy()
	require.NoError(t, openapi.CheckPolicy(instancesv1.InstanceMeteringService_ServiceDesc.ServiceName, func(fullMethod string) (listed, public bool) {
		rule, ok := policy[fullMethod]
		return ok, rule.Public
	}))
}
