package obscheck_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tallyhq/tally/pkg/obscheck"
)

// deployDir is the repository's deploy/observability, from this package's directory.
const deployDir = "../../deploy/observability"

func TestDeployedDashboardsAreValid(t *testing.T) {
	checked, err := obscheck.CheckDashboards(deployDir)
	require.NoError(t, err)
	assert.Contains(t, checked, "dashboards/tally-money-path.json")
	assert.GreaterOrEqual(t, len(checked), 7, "the money path and one dashboard per service")
}

func TestDeployedRulesAndDashboardsNameTheirMetrics(t *testing.T) {
	used, err := obscheck.UsedMetrics(deployDir)
	require.NoError(t, err)
	for _, name := range []string{"tally_ledger_commit_duration_seconds", "grpc_server_handled_total", "up"} {
		assert.Contains(t, used, name)
	}
	assert.Contains(t, used["tally_ledger_commit_duration_seconds"], "rules/tally-alerts.yml")
	assert.Contains(t, used["tally_ledger_commit_duration_seconds"], "dashboards/tally-money-path.json")
}
