// Package obscheck reads the Prometheus rule files and Grafana dashboards under deploy/observability
// and says which metrics they use, so that a test can prove every one of them is exported by a
// running stack (issue 15), and checks that each dashboard is well formed.
//
// PromQL is parsed with Prometheus's own parser (promql/parser), never matched with regular
// expressions: a label name, a function, a keyword or a duration is never taken for a metric.
package obscheck

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
)

// histogramSuffixes are the series a classic histogram (or summary) named base exports besides
// base itself; a query of base_bucket uses the metric base.
var histogramSuffixes = []string{"_bucket", "_sum", "_count"}

// prometheusOwn are series Prometheus writes itself for every target and alert; no service
// exports them.
var prometheusOwn = map[string]bool{
	"up":                                    true,
	"scrape_duration_seconds":               true,
	"scrape_samples_scraped":                true,
	"scrape_samples_post_metric_relabeling": true,
	"scrape_series_added":                   true,
	"ALERTS":                                true,
	"ALERTS_FOR_STATE":                      true,
}

// PrometheusOwn reports whether name is a series Prometheus itself writes (up, scrape_*, ALERTS),
// which no /metrics endpoint exports: the "every used metric is exported" check skips these.
func PrometheusOwn(name string) bool { return prometheusOwn[name] }

// BaseName folds a histogram's _bucket, _sum and _count series to the histogram's name.
func BaseName(name string) string {
	for _, s := range histogramSuffixes {
		if base, ok := strings.CutSuffix(name, s); ok && base != "" {
			return base
		}
	}
	return name
}

// UsedMetrics returns every metric name used by the Prometheus rule files (*.yml, *.yaml with a
// top-level "groups") and the Grafana dashboards (*.json) under dir, each mapped to the files
// (slash paths relative to dir, sorted) that use it. Histogram series are folded to the
// histogram's name (BaseName). Series Prometheus writes itself (up, ALERTS) are included; filter
// them with PrometheusOwn. YAML files without "groups" (promtool unit tests, a scrape config) are
// not rule files and are skipped.
func UsedMetrics(dir string) (map[string][]string, error) {
	used := map[string][]string{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil {
			return fmt.Errorf("obscheck: %w", err)
		}
		rel = filepath.ToSlash(rel)
		exprs, err := fileExprs(path)
		if err != nil {
			return fmt.Errorf("obscheck: %s: %w", rel, err)
		}
		for _, e := range exprs {
			names, err := MetricNames(e.expr)
			if err != nil {
				return fmt.Errorf("obscheck: %s: %s: %w", rel, e.where, err)
			}
			for _, n := range names {
				if !slices.Contains(used[n], rel) {
					used[n] = append(used[n], rel)
				}
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	for _, files := range used {
		slices.Sort(files)
	}
	return used, nil
}

// located is one PromQL expression and where in its file it is (for error messages).
type located struct {
	where string
	expr  string
}

// fileExprs returns the PromQL expressions of one file, chosen by its extension; other files
// (Markdown, say) have none.
func fileExprs(path string) ([]located, error) {
	ext := strings.ToLower(filepath.Ext(path))
	if ext != ".json" && ext != ".yml" && ext != ".yaml" {
		return nil, nil
	}
	data, err := os.ReadFile(path) //nolint:gosec // paths come from walking the caller's directory
	if err != nil {
		return nil, fmt.Errorf("read: %w", err)
	}
	if ext == ".json" {
		d, err := ParseDashboard(data)
		if err != nil {
			return nil, err
		}
		return d.exprs(), nil
	}
	rf, err := parseRuleFile(data)
	if err != nil {
		return nil, err
	}
	return rf.exprs(), nil
}

// MetricNames returns the metric names (folded by BaseName, sorted, each once) that a PromQL
// expression selects. Grafana's interval variables ($__rate_interval and the like) are accepted;
// a selector that names its metric with anything but an equality on __name__ is an error, as the
// metric it uses cannot be known.
func MetricNames(expr string) ([]string, error) {
	e, err := ParseExpr(expr)
	if err != nil {
		return nil, err
	}
	var names []string
	var bad error
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		vs, ok := n.(*parser.VectorSelector)
		if !ok {
			return nil
		}
		name, err := selectorName(vs)
		if err != nil {
			bad = errors.Join(bad, err)
			return nil
		}
		if name = BaseName(name); !slices.Contains(names, name) {
			names = append(names, name)
		}
		return nil
	})
	if bad != nil {
		return nil, bad
	}
	slices.Sort(names)
	return names, nil
}

// selectorName is the metric a vector selector selects: its name, or its __name__="..." matcher.
func selectorName(vs *parser.VectorSelector) (string, error) {
	if vs.Name != "" {
		return vs.Name, nil
	}
	for _, m := range vs.LabelMatchers {
		if m.Name != model.MetricNameLabel {
			continue
		}
		if m.Type != labels.MatchEqual {
			return "", fmt.Errorf("selector %s names its metric by %s, not one name", vs, m)
		}
		return m.Value, nil
	}
	return "", fmt.Errorf("selector %s names no metric", vs)
}

// ParseExpr parses a PromQL expression as Prometheus would, after replacing Grafana's built-in
// interval variables ($__rate_interval, $__interval, $__range and their _ms/_s forms) with a
// duration or number. Other dashboard variables are left alone, so they parse only inside label
// matcher strings (service=~"$service"), where Grafana expands them.
func ParseExpr(expr string) (parser.Expr, error) {
	e, err := parser.NewParser(parser.Options{}).ParseExpr(grafanaIntervals.Replace(expr))
	if err != nil {
		return nil, fmt.Errorf("parse %q: %w", expr, err)
	}
	return e, nil
}

// grafanaIntervals replaces Grafana's built-in interval variables; longer names first, so
// $__interval_ms is not read as $__interval followed by "_ms".
var grafanaIntervals = strings.NewReplacer(
	"${__rate_interval}", "5m", "$__rate_interval", "5m",
	"${__interval_ms}", "300000", "$__interval_ms", "300000",
	"${__interval}", "5m", "$__interval", "5m",
	"${__range_ms}", "3600000", "$__range_ms", "3600000",
	"${__range_s}", "3600", "$__range_s", "3600",
	"${__range}", "1h", "$__range", "1h",
)

// Unexported returns the used metrics (UsedMetrics) that exported lacks, sorted, each as
// "name (file, file)"; series Prometheus writes itself are never missing. exported holds metric
// family names as a scrape parses them (a histogram's family is its base name).
func Unexported(used map[string][]string, exported map[string]bool) []string {
	var missing []string
	for name, files := range used {
		if PrometheusOwn(name) || exported[name] {
			continue
		}
		missing = append(missing, name+" ("+strings.Join(files, ", ")+")")
	}
	slices.Sort(missing)
	return missing
}
