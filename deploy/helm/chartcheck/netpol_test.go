package chartcheck_test

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"

	"github.com/tallyhq/tally/deploy/helm/chartcheck"
)

// checkNetworkPolicies: a default deny over every pod of the release; each service admits on its
// gRPC port exactly the tally services of `callers` (plus the values' allowFrom peers), its
// metrics port only from a namespace selector (monitoring), and may open exactly the gRPC ports
// of the services it calls.
func checkNetworkPolicies(t *testing.T, s chartcheck.Set) {
	checkDefaultDeny(t, s)
	callees := map[string][]string{}
	for callee, cs := range callers {
		for _, c := range cs {
			callees[c] = append(callees[c], callee)
		}
	}
	for svc := range callers {
		d := s.Deployment(svc)
		i := slices.IndexFunc(s.NetworkPolicies, func(np *networkingv1.NetworkPolicy) bool { return ownPolicy(np, svc) })
		if d == nil || i < 0 {
			continue // checkPerService reports it
		}
		np := s.NetworkPolicies[i]
		main, metrics := mainPort(d.Spec.Template.Spec.Containers[0])
		if err := checkIngress(np, main, metrics, callers[svc], svc == "gateway"); err != nil {
			t.Errorf("%s: %v", np.Name, err)
		}
		slices.Sort(callees[svc])
		if got := egressServices(np); !slices.Equal(got, callees[svc]) {
			t.Errorf("%s: egress to tally services %v, want %v", np.Name, got, callees[svc])
		}
	}
}

func checkDefaultDeny(t *testing.T, s chartcheck.Set) {
	for _, np := range s.NetworkPolicies {
		if np.Name != release+"-default-deny" {
			continue
		}
		types := slices.Sorted(slices.Values(np.Spec.PolicyTypes))
		if len(np.Spec.Ingress)+len(np.Spec.Egress) > 0 || !slices.Equal(types, []networkingv1.PolicyType{"Egress", "Ingress"}) {
			t.Errorf("default deny %s allows something or misses a policy type", np.Name)
		}
		for _, d := range s.Deployments {
			if !chartcheck.Selects(&np.Spec.PodSelector, d.Spec.Template.Labels) {
				t.Errorf("default deny does not select the pods of %s", d.Name)
			}
		}
		return
	}
	t.Errorf("no default-deny NetworkPolicy")
}

func mainPort(c corev1.Container) (main, metrics string) {
	for _, p := range c.Ports {
		port := fmt.Sprintf("%d/TCP", p.ContainerPort)
		if p.Name == "metrics" {
			metrics = port
		} else {
			main = port
		}
	}
	return main, metrics
}

func checkIngress(np *networkingv1.NetworkPolicy, main, metrics string, want []string, public bool) error {
	var sawMain, sawMetrics bool
	for _, rule := range np.Spec.Ingress {
		ports := chartcheck.Ports(rule.Ports)
		services, others := chartcheck.Peers(rule.From)
		switch {
		case slices.Equal(ports, []string{metrics}):
			if len(services) > 0 || len(rule.From) == 0 || rule.From[0].NamespaceSelector == nil {
				return fmt.Errorf("metrics port open to %v, want only a namespace selector", rule.From)
			}
			sawMetrics = true
		case slices.Equal(ports, []string{main}) && public:
			sawMain = true // the gateway: anyone, or the values' gatewayFrom
		case slices.Equal(ports, []string{main}):
			if !slices.Equal(services, want) {
				return fmt.Errorf("port %s admits tally services %v, want %v (others: %v)", main, services, want, others)
			}
			sawMain = true
		default:
			return fmt.Errorf("ingress rule on unexpected ports %v", ports)
		}
	}
	if !sawMetrics || (!sawMain && (len(want) > 0 || public)) {
		return fmt.Errorf("missing ingress rule: main port %s (%v), metrics %s (%v)", main, sawMain, metrics, sawMetrics)
	}
	return nil
}

func egressServices(np *networkingv1.NetworkPolicy) []string {
	var out []string
	for _, rule := range np.Spec.Egress {
		services, _ := chartcheck.Peers(rule.To)
		out = append(out, services...)
	}
	slices.Sort(out)
	return out
}

// checkAddresses: every TALLY_*_ADDR a Deployment sets names a rendered Service on the callee's
// gRPC port, and the services it dials are exactly those its NetworkPolicy lets it reach.
func checkAddresses(t *testing.T, s chartcheck.Set) {
	ports := map[string]int32{}
	for _, svc := range s.Services {
		for _, p := range svc.Spec.Ports {
			if p.Name == "grpc" {
				ports[svc.Name] = p.Port
				if svc.Spec.ClusterIP != corev1.ClusterIPNone {
					t.Errorf("gRPC Service %s is not headless (clusterIP None): callers would not balance over its pods", svc.Name)
				}
			}
		}
	}
	for svc := range callers {
		d := s.Deployment(svc)
		if d == nil {
			continue
		}
		var dialed []string
		for _, e := range d.Spec.Template.Spec.Containers[0].Env {
			if !strings.HasSuffix(e.Name, "_ADDR") || strings.HasSuffix(e.Name, "_GRPC_ADDR") ||
				strings.HasSuffix(e.Name, "_HTTP_ADDR") || strings.HasSuffix(e.Name, "_METRICS_ADDR") {
				continue
			}
			addr, balanced := strings.CutPrefix(e.Value, "dns:///")
			if !balanced {
				t.Errorf("%s: %s=%s is not a dns:/// target (round-robin over the Service's pods)", svc, e.Name, e.Value)
			}
			host, port, _ := strings.Cut(addr, ":")
			if want, ok := ports[host]; !ok || fmt.Sprint(want) != port {
				t.Errorf("%s: %s=%s is not a rendered gRPC Service (%v)", svc, e.Name, e.Value, slices.Sorted(maps.Keys(ports)))
			}
			dialed = append(dialed, chartcheck.ServiceOfAddr(release, addr))
		}
		slices.Sort(dialed)
		i := slices.IndexFunc(s.NetworkPolicies, func(np *networkingv1.NetworkPolicy) bool { return ownPolicy(np, svc) })
		if i >= 0 && !slices.Equal(dialed, egressServices(s.NetworkPolicies[i])) {
			t.Errorf("%s dials %v but its NetworkPolicy opens %v", svc, dialed, egressServices(s.NetworkPolicies[i]))
		}
	}
}
