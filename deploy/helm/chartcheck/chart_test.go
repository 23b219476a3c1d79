package chartcheck_test

import (
	"context"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tallyhq/tally/deploy/helm/chartcheck"
)

// release is the release name the renders use (chartcheck.Template): objects are tally-<service>.
const release = "tally"

// callers is who calls each service's gRPC port, from the services' auth policy tables
// (services/*/internal/grpcapi/policy.go) and the addresses each one dials (TALLY_*_ADDR):
//   - ledger: the gateway (members' reads), payments (Credit, Adjust: Services ["payments"]),
//     instances-metering (Debit as a service) and notifications (WatchEvents as a service);
//   - pricing: the gateway (public reads), ledger and instances-metering (WatchCatalog: services);
//   - payments: the gateway only (members, ops, the Stripe webhook it forwards);
//   - instances-metering: the gateway (members' reads, ops) — and the instance controller (allowFrom);
//   - notifications: the gateway and instances-metering (NotifyRentalSuspended: Services
//     ["instances-metering"]).
var callers = map[string][]string{
	"ledger":             {"gateway", "instances-metering", "notifications", "payments"},
	"pricing":            {"gateway", "instances-metering", "ledger"},
	"payments":           {"gateway"},
	"instances-metering": {"gateway"},
	"notifications":      {"gateway", "instances-metering"},
	"gateway":            nil,
}

type variant struct {
	name     string
	args     []string
	existing string // secrets.existingSecret
}

var variants = []variant{
	{name: "default"},
	{name: "production", args: []string{"-f", "values-production.yaml"}, existing: "tally-secrets"},
	{name: "everything", args: []string{"--set", "metrics.serviceMonitor.enabled=true,metrics.prometheusRule.enabled=true," +
		"migrations.job.enabled=true,auth.serviceIdentity=oauth,auth.oauth.clientID=tally,secrets.oauthClientSecret=s," +
		"secrets.databaseURL=postgres://db/tally"}},
	{name: "migrate on start", args: []string{"--set", "migrations.job.enabled=false,migrations.migrateOnStart=true"}},
}

func chartDir(t *testing.T) (repo, helm, chart string) {
	t.Helper()
	repo, err := chartcheck.Repo(".")
	if err != nil {
		t.Fatal(err)
	}
	helm, err = chartcheck.Helm(repo)
	if err != nil {
		t.Fatal(err)
	}
	return repo, helm, filepath.Join(repo, "deploy", "helm", "tally")
}

func TestChart(t *testing.T) {
	_, helm, chart := chartDir(t)
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			args := slices.Clone(v.args)
			for i, a := range args {
				if strings.HasSuffix(a, ".yaml") {
					args[i] = filepath.Join(chart, a)
				}
			}
			objs, err := chartcheck.Template(context.Background(), helm, chart, args...)
			if err != nil {
				t.Fatal(err)
			}
			s := chartcheck.Index(objs)
			t.Run("containers", func(t *testing.T) { checkContainers(t, s) })
			t.Run("secrets", func(t *testing.T) { checkSecrets(t, s, v.existing) })
			t.Run("per-service objects", func(t *testing.T) { checkPerService(t, s) })
			t.Run("replicas", func(t *testing.T) { checkReplicas(t, s) })
			t.Run("network policies", func(t *testing.T) { checkNetworkPolicies(t, s) })
			t.Run("addresses", func(t *testing.T) { checkAddresses(t, s) })
			t.Run("monitoring", func(t *testing.T) { checkMonitoring(t, s, v.name == "production" || v.name == "everything") })
			t.Run("hooks", func(t *testing.T) { checkHooks(t, s, v.name != "migrate on start") })
		})
	}
}

func checkContainers(t *testing.T, s chartcheck.Set) {
	for _, d := range s.Deployments {
		for _, c := range d.Spec.Template.Spec.Containers {
			if err := chartcheck.CheckContainer(d.Spec.Template.Spec, c); err != nil {
				t.Errorf("deployment %s: %v", d.Name, err)
			}
			if err := chartcheck.CheckProbes(c); err != nil {
				t.Errorf("deployment %s: %v", d.Name, err)
			}
		}
	}
	for _, j := range s.Jobs {
		for _, c := range j.Spec.Template.Spec.Containers {
			if err := chartcheck.CheckContainer(j.Spec.Template.Spec, c); err != nil {
				t.Errorf("job %s: %v", j.Name, err)
			}
		}
	}
}

func checkSecrets(t *testing.T, s chartcheck.Set, existing string) {
	pods := map[string]corev1.PodSpec{}
	for _, d := range s.Deployments {
		pods["deployment "+d.Name] = d.Spec.Template.Spec
	}
	for _, j := range s.Jobs {
		pods["job "+j.Name] = j.Spec.Template.Spec
	}
	used := map[string]bool{}
	for name, pod := range pods {
		if err := chartcheck.CheckSecretRefs(pod, s.Secrets, existing); err != nil {
			t.Errorf("%s: %v", name, err)
		}
		for _, r := range chartcheck.SecretRefs(pod) {
			used[r.Name] = true
		}
	}
	for _, sec := range s.Secrets {
		if !used[sec.Name] {
			t.Errorf("secret %s is rendered but no pod uses it", sec.Name)
		}
	}
	if existing != "" && len(s.Secrets) > 0 {
		t.Errorf("with existingSecret %s the chart still renders %d secrets", existing, len(s.Secrets))
	}
	if !used[existing] && existing != "" {
		t.Errorf("no pod uses the existing secret %s", existing)
	}
}

func checkPerService(t *testing.T, s chartcheck.Set) {
	for svc := range callers {
		d := s.Deployment(svc)
		if d == nil {
			t.Errorf("no deployment for %s", svc)
			continue
		}
		pod := d.Spec.Template.Labels
		if !chartcheck.Selects(d.Spec.Selector, pod) {
			t.Errorf("deployment %s does not select its own pods", d.Name)
		}
		if n := count(s.PDBs, func(p int) bool { return chartcheck.Selects(s.PDBs[p].Spec.Selector, pod) }); n != 1 {
			t.Errorf("%s: %d PodDisruptionBudgets select its pods, want 1", svc, n)
		}
		if n := count(s.NetworkPolicies, func(p int) bool { return ownPolicy(s.NetworkPolicies[p], svc) }); n != 1 {
			t.Errorf("%s: %d NetworkPolicies of its own, want 1", svc, n)
		}
		n := count(s.Services, func(i int) bool {
			sel := s.Services[i].Spec.Selector
			return len(sel) > 0 && chartcheck.Selects(&metav1.LabelSelector{MatchLabels: sel}, pod)
		})
		if n != 1 {
			t.Errorf("%s: %d Services select its pods, want 1", svc, n)
		}
	}
	if len(s.Deployments) != len(callers) {
		t.Errorf("%d deployments, want one per service (%d)", len(s.Deployments), len(callers))
	}
}

func count[T any](xs []T, f func(int) bool) int {
	n := 0
	for i := range xs {
		if f(i) {
			n++
		}
	}
	return n
}

func ownPolicy(np *networkingv1.NetworkPolicy, svc string) bool {
	return np.Spec.PodSelector.MatchLabels[chartcheck.ComponentLabel] == svc
}

func checkReplicas(t *testing.T, s chartcheck.Set) {
	for _, svc := range []string{"gateway", "ledger"} {
		if d := s.Deployment(svc); d != nil && s.MinReplicas(d) < 2 {
			t.Errorf("%s runs %d replica(s) at least, want ≥ 2", svc, s.MinReplicas(d))
		}
	}
	for _, h := range s.HPAs {
		if !slices.ContainsFunc(s.Deployments, func(d *appsv1.Deployment) bool { return d.Name == h.Spec.ScaleTargetRef.Name }) {
			t.Errorf("HPA %s scales %s, which is not rendered", h.Name, h.Spec.ScaleTargetRef.Name)
		}
		if h.Spec.MinReplicas == nil || *h.Spec.MinReplicas > h.Spec.MaxReplicas || len(h.Spec.Metrics) == 0 {
			t.Errorf("HPA %s: minReplicas must be set and ≤ maxReplicas, with a metric", h.Name)
		}
	}
}
