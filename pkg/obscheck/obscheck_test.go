package obscheck_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tallyhq/tally/pkg/obscheck"
)

func TestUsedMetricsFindsEveryMetricOfRulesAndDashboards(t *testing.T) {
	used, err := obscheck.UsedMetrics("testdata/ok")
	require.NoError(t, err)
	rules, dash := "rules/app.rules.yml", "dashboards/service.json"
	assert.Equal(t, map[string][]string{
		"tally_requests_total":          {dash, rules},
		"tally_commit_duration_seconds": {dash, rules},
		"up":                            {rules},
		"grpc_server_handled_total":     {dash},
		"tally_queue_depth":             {dash},
		"tally_lag_events":              {dash},
		"tally_batch_size":              {dash},
	}, used, "the unit test file's series and the README are no rule file or dashboard")
}

func TestUsedMetricsFailsOnWhatItCannotRead(t *testing.T) {
	_, err := obscheck.UsedMetrics("testdata/badrule")
	require.ErrorContains(t, err, `bad.rules.yml: group "bad", rule "Broken"`)

	_, err = obscheck.UsedMetrics("testdata/regexname")
	require.ErrorContains(t, err, "names its metric by")

	_, err = obscheck.UsedMetrics("testdata/baddash")
	require.ErrorContains(t, err, `dup.json: panel 1 "Two" target A`)

	_, err = obscheck.UsedMetrics("testdata/missing")
	require.Error(t, err)
}

func TestMetricNames(t *testing.T) {
	for _, tc := range []struct {
		expr string
		want []string
	}{
		{`up`, []string{"up"}},
		{`sum by (code, method) (rate(grpc_server_handled_total{code!="OK"}[5m]))`, []string{"grpc_server_handled_total"}},
		{`sum without (instance) (rate(a_total[1h:5m])) / ignoring (x) group_left b`, []string{"a_total", "b"}},
		{`histogram_quantile(0.99, sum by (le) (rate(x_seconds_bucket[5m])))`, []string{"x_seconds"}},
		{`rate(x_seconds_sum[5m]) / rate(x_seconds_count[5m])`, []string{"x_seconds"}},
		{`label_replace(m, "dst", "$1", "src", "(.*)")`, []string{"m"}},
		{`{__name__="by_name", job="j"}`, []string{"by_name"}},
		{`sum by (offset, on, le) (group_total) + count(rate_total)`, []string{"group_total", "rate_total"}},
		{`vector(1) + time() * 2 > bool 1`, nil},
		{`absent_over_time(gone[10m]) unless on (job) up offset 5m`, []string{"gone", "up"}},
		{`max_over_time(g[$__rate_interval]) + avg_over_time(g[$__range]) + rate(h[${__interval}])`, []string{"g", "h"}},
		{`_bucket`, []string{"_bucket"}},
	} {
		got, err := obscheck.MetricNames(tc.expr)
		require.NoError(t, err, tc.expr)
		assert.Equal(t, tc.want, got, tc.expr)
	}
	for _, bad := range []string{`sum(`, `rate(x[5q])`, `x{a=~"("}`, `{__name__=~"x|y"}`, `x[$window]`, `{job="j"} * 0`} {
		_, err := obscheck.MetricNames(bad)
		assert.Error(t, err, bad)
	}
}

func TestBaseNameAndPrometheusOwn(t *testing.T) {
	assert.Equal(t, "a_seconds", obscheck.BaseName("a_seconds_bucket"))
	assert.Equal(t, "a_seconds", obscheck.BaseName("a_seconds_count"))
	assert.Equal(t, "a_total", obscheck.BaseName("a_total"))
	assert.True(t, obscheck.PrometheusOwn("up"))
	assert.False(t, obscheck.PrometheusOwn("grpc_server_handled_total"))
}

func TestCheckDashboards(t *testing.T) {
	checked, err := obscheck.CheckDashboards("testdata/ok")
	require.NoError(t, err)
	assert.Equal(t, []string{"dashboards/service.json"}, checked)

	_, err = obscheck.CheckDashboards("testdata/baddash")
	require.ErrorContains(t, err, `panel id 1 used by "One" and "Two"`)
	require.ErrorContains(t, err, `panel 2 "Empty" has no query`)
	require.ErrorContains(t, err, `tally_b[$service]`)
	require.ErrorContains(t, err, "dashboard has no data-source variable DS_PROMETHEUS")
	require.ErrorContains(t, err, `panel 1 "One": datasource "", want "${DS_PROMETHEUS}"`)
	require.ErrorContains(t, err, `panel 3 "Fixed" target A: datasource "P1809F7CD0C75ACF3", want "${DS_PROMETHEUS}"`)

	_, err = obscheck.CheckDashboards("testdata/badrule")
	require.ErrorContains(t, err, "no dashboards")

	_, err = obscheck.ParseDashboard([]byte(`{"uid": "a"} {}`))
	require.Error(t, err)
}

func TestUnexported(t *testing.T) {
	used := map[string][]string{
		"up":          {"rules/a.yml"},
		"a_seconds":   {"dashboards/d.json", "rules/a.yml"},
		"b_total":     {"rules/a.yml"},
		"c_total":     {"dashboards/d.json"},
		"exported_ok": {"dashboards/d.json"},
	}
	got := obscheck.Unexported(used, map[string]bool{"exported_ok": true, "a_seconds": true})
	assert.Equal(t, []string{"b_total (rules/a.yml)", "c_total (dashboards/d.json)"}, got)
	assert.Empty(t, obscheck.Unexported(used, map[string]bool{"exported_ok": true, "a_seconds": true, "b_total": true, "c_total": true}))
}
