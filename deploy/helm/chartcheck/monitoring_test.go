package chartcheck_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/tallyhq/tally/deploy/helm/chartcheck"
)

// checkMonitoring: the ServiceMonitor selects every Service by its metrics port and names the job
// from tally.dev/job (tally-<service>, what the rules expect); the PrometheusRule carries every
// rule of files/tally-alerts.yml unchanged, each with the fields the CRD requires.
func checkMonitoring(t *testing.T, s chartcheck.Set, want bool) {
	if !want {
		if len(s.ServiceMonitors)+len(s.PrometheusRules) > 0 {
			t.Errorf("monitoring objects rendered while off by default (they need the operator's CRDs)")
		}
		return
	}
	if len(s.ServiceMonitors) != 1 || len(s.PrometheusRules) != 1 {
		t.Fatalf("%d ServiceMonitors and %d PrometheusRules, want 1 and 1", len(s.ServiceMonitors), len(s.PrometheusRules))
	}
	sm := s.ServiceMonitors[0]
	if len(sm.Spec.Endpoints) == 0 || sm.Spec.JobLabel != "tally.dev/job" {
		t.Errorf("ServiceMonitor needs endpoints and jobLabel tally.dev/job: %+v", sm.Spec)
	}
	for _, svc := range s.Services {
		if !chartcheck.Selects(&sm.Spec.Selector, svc.Labels) {
			t.Errorf("ServiceMonitor does not select Service %s", svc.Name)
		}
		if job := svc.Labels["tally.dev/job"]; !strings.HasPrefix(job, "tally-") {
			t.Errorf("Service %s: job label %q, the rules expect tally-<service>", svc.Name, job)
		}
		for _, ep := range sm.Spec.Endpoints {
			if !hasPort(svc.Spec.Ports, ep.Port) {
				t.Errorf("Service %s has no port %q the ServiceMonitor scrapes", svc.Name, ep.Port)
			}
		}
	}
	checkRules(t, s.PrometheusRules[0])
}

func hasPort(ports []corev1.ServicePort, name string) bool {
	for _, p := range ports {
		if p.Name == name {
			return true
		}
	}
	return false
}

func checkRules(t *testing.T, pr *chartcheck.PrometheusRule) {
	_, _, chart := chartDir(t)
	src, err := os.ReadFile(filepath.Join(chart, "files", "tally-alerts.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var file struct {
		Groups []chartcheck.RuleGroup `json:"groups"`
	}
	if err := yaml.UnmarshalStrict(src, &file); err != nil {
		t.Fatalf("files/tally-alerts.yml: %v", err)
	}
	got, _ := yaml.Marshal(pr.Spec.Groups)
	want, _ := yaml.Marshal(file.Groups)
	if !bytes.Equal(got, want) || len(file.Groups) == 0 {
		t.Errorf("the PrometheusRule's groups differ from files/tally-alerts.yml (or it has none)")
	}
	for _, g := range pr.Spec.Groups {
		if g.Name == "" || len(g.Rules) == 0 {
			t.Errorf("rule group %q needs a name and rules", g.Name)
		}
		for _, r := range g.Rules {
			if r.Expr == "" || (r.Alert == "") == (r.Record == "") {
				t.Errorf("group %s: a rule needs expr and exactly one of alert and record: %+v", g.Name, r)
			}
			if r.Alert != "" && r.Labels["severity"] == "" {
				t.Errorf("alert %s has no severity", r.Alert)
			}
		}
	}
}

// TestAlertRulesAreTheObservabilityRules: the chart's copy of the alert rules is byte for byte
// deploy/observability/rules/tally-alerts.yml (refresh it with cp when the rules change).
func TestAlertRulesAreTheObservabilityRules(t *testing.T) {
	repo, _, chart := chartDir(t)
	source := filepath.Join(repo, "deploy", "observability", "rules", "tally-alerts.yml")
	want, err := os.ReadFile(source)
	if os.IsNotExist(err) {
		t.Skipf("%s is not on this branch yet (observability, issue 15)", source)
	}
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(chart, "files", "tally-alerts.yml"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("deploy/helm/tally/files/tally-alerts.yml differs from %s: cp the latter over the former", source)
	}
}

// checkHooks: the migrations Job runs before install and upgrade, and the Secret it reads exists
// before it (a hook of lower weight) when the chart creates the Secret.
func checkHooks(t *testing.T, s chartcheck.Set, job bool) {
	checkMigrateOnStart(t, s, job)
	if !job {
		if len(s.Jobs) > 0 {
			t.Errorf("a migrations Job is rendered while migrations.job.enabled is off")
		}
		return
	}
	if len(s.Jobs) != 1 {
		t.Fatalf("%d Jobs, want the migrations Job", len(s.Jobs))
	}
	j := s.Jobs[0]
	if j.Annotations["helm.sh/hook"] != "pre-install,pre-upgrade" {
		t.Errorf("Job %s hook %q, want pre-install,pre-upgrade", j.Name, j.Annotations["helm.sh/hook"])
	}
	if j.Spec.Template.Spec.RestartPolicy != "Never" || j.Spec.BackoffLimit == nil || j.Spec.ActiveDeadlineSeconds == nil {
		t.Errorf("Job %s: restartPolicy Never, a backoffLimit and a deadline", j.Name)
	}
	for _, c := range j.Spec.Template.Spec.Containers {
		if len(c.Command) != 2 || c.Command[1] != "migrate" || c.Command[0] != "/usr/local/bin/"+c.Name {
			t.Errorf("Job container %s runs %v, want [/usr/local/bin/%s migrate]", c.Name, c.Command, c.Name)
		}
	}
	jobWeight, err := strconv.Atoi(j.Annotations["helm.sh/hook-weight"])
	if err != nil {
		t.Fatalf("Job %s hook weight: %v", j.Name, err)
	}
	for _, sec := range s.Secrets {
		w, err := strconv.Atoi(sec.Annotations["helm.sh/hook-weight"])
		if sec.Annotations["helm.sh/hook"] != "pre-install,pre-upgrade" || err != nil || w >= jobWeight {
			t.Errorf("Secret %s is not a hook created before the Job (weight %q)", sec.Name, sec.Annotations["helm.sh/hook-weight"])
		}
	}
}

// checkMigrateOnStart: with the Job every Deployment with a database starts with
// TALLY_MIGRATE_ON_START=false and the Job has its container with the Deployment's environment
// (the binary validates all of it before migrating); without the Job each migrates on start.
func checkMigrateOnStart(t *testing.T, s chartcheck.Set, job bool) {
	jobEnv := map[string][]string{}
	for _, j := range s.Jobs {
		for _, c := range j.Spec.Template.Spec.Containers {
			jobEnv[c.Name] = envNames(c.Env)
		}
	}
	want := map[bool]string{true: "false", false: "true"}[job]
	databases := 0
	for _, d := range s.Deployments {
		c := d.Spec.Template.Spec.Containers[0]
		if !slices.Contains(envNames(c.Env), "DATABASE_URL") {
			continue
		}
		databases++
		got := ""
		for _, e := range c.Env {
			if e.Name == "TALLY_MIGRATE_ON_START" {
				got = e.Value
			}
		}
		if got != want {
			t.Errorf("deployment %s: TALLY_MIGRATE_ON_START=%q, want %q", d.Name, got, want)
		}
		if env, ok := jobEnv[c.Name]; job && (!ok || !slices.Equal(env, envNames(c.Env))) {
			t.Errorf("migrations Job container %s: env %v, want the Deployment's %v", c.Name, env, envNames(c.Env))
		}
	}
	if job && len(jobEnv) != databases {
		t.Errorf("migrations Job has %d containers, want one per service with a database (%d)", len(jobEnv), databases)
	}
}

func envNames(env []corev1.EnvVar) []string {
	names := make([]string, 0, len(env))
	for _, e := range env {
		names = append(names, e.Name)
	}
	return names
}

// TestNoMigrationsIsRefused: with the Job off and migrateOnStart off nothing would migrate.
func TestNoMigrationsIsRefused(t *testing.T) {
	_, helm, chart := chartDir(t)
	_, err := chartcheck.Template(context.Background(), helm, chart, "--set", "migrations.job.enabled=false")
	if err == nil || !strings.Contains(err.Error(), "nothing would apply the migrations") {
		t.Fatalf("rendering with the migrations Job off: %v, want the chart's refusal", err)
	}
}

// TestRedisCluster: redis.mode=cluster hands the ledger a redis+cluster:// URL of the nodes,
// and is refused without nodes.
func TestRedisCluster(t *testing.T) {
	_, helm, chart := chartDir(t)
	objs, err := chartcheck.Template(context.Background(), helm, chart, "--set", "redis.mode=cluster", "--set", "redis.clusterNodes={redis-0.redis:6379,redis-1.redis:6379}")
	if err != nil {
		t.Fatalf("rendering with redis.mode=cluster: %v", err)
	}
	var urls []string
	for _, d := range chartcheck.Index(objs).Deployments {
		for _, c := range d.Spec.Template.Spec.Containers {
			for _, e := range c.Env {
				if e.Name == "REDIS_URL" {
					urls = append(urls, d.Name+"="+e.Value)
				}
			}
		}
	}
	if want := []string{"tally-ledger=redis+cluster://redis-0.redis:6379,redis-1.redis:6379"}; !slices.Equal(urls, want) {
		t.Errorf("REDIS_URL: %q, want %q", urls, want)
	}
	_, err = chartcheck.Template(context.Background(), helm, chart, "--set", "redis.mode=cluster")
	if err == nil || !strings.Contains(err.Error(), "redis.clusterNodes") {
		t.Fatalf("rendering with redis.mode=cluster and no nodes: %v, want the chart's refusal", err)
	}
}

// TestValuesSchemaRefusesMistakes: values.schema.json refuses a misspelt key and a value outside
// an enum, instead of rendering a chart that silently ignores them.
func TestValuesSchemaRefusesMistakes(t *testing.T) {
	_, helm, chart := chartDir(t)
	for set, want := range map[string]string{
		"service.ledger.replicas=3":        "additional properties 'service'",
		"services.ledger.replica=3":        "additional properties 'replica'",
		"auth.serviceIdentity=kerberos":    "/auth/serviceIdentity",
		"smtp.tls=ssl":                     "/smtp/tls",
		"services.gateway.calls={billing}": "/services/gateway/calls/0",
	} {
		_, err := chartcheck.Template(context.Background(), helm, chart, "--set", set)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("--set %s: %v, want a schema error naming %s", set, err, want)
		}
	}
}
