package chartcheck

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
)

// SecretRef is one use of a Secret by a pod: an env key, envFrom or a volume (Key empty).
type SecretRef struct {
	Name, Key string
	Optional  bool
}

// SecretRefs lists the Secrets a pod uses.
func SecretRefs(pod corev1.PodSpec) []SecretRef {
	var refs []SecretRef
	for _, c := range slices.Concat(pod.InitContainers, pod.Containers) {
		for _, e := range c.Env {
			if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
				r := e.ValueFrom.SecretKeyRef
				refs = append(refs, SecretRef{Name: r.Name, Key: r.Key, Optional: isTrue(r.Optional)})
			}
		}
		for _, ef := range c.EnvFrom {
			if ef.SecretRef != nil {
				refs = append(refs, SecretRef{Name: ef.SecretRef.Name, Optional: isTrue(ef.SecretRef.Optional)})
			}
		}
	}
	for _, v := range pod.Volumes {
		if v.Secret != nil {
			refs = append(refs, SecretRef{Name: v.Secret.SecretName, Optional: isTrue(v.Secret.Optional)})
		}
	}
	return refs
}

// CheckSecretRefs requires every Secret a pod uses to be rendered or to be the existing Secret
// the values name, and every required key of a rendered Secret to be in it.
func CheckSecretRefs(pod corev1.PodSpec, secrets []*corev1.Secret, existing string) error {
	var errs []error
	for _, r := range SecretRefs(pod) {
		i := slices.IndexFunc(secrets, func(s *corev1.Secret) bool { return s.Name == r.Name })
		switch {
		case i < 0 && r.Name != existing:
			errs = append(errs, fmt.Errorf("secret %s is neither rendered nor the existing secret (%q)", r.Name, existing))
		case i >= 0 && r.Key != "" && !r.Optional && !hasKey(secrets[i], r.Key):
			errs = append(errs, fmt.Errorf("secret %s has no key %s", r.Name, r.Key))
		}
	}
	return errors.Join(errs...)
}

func hasKey(s *corev1.Secret, key string) bool {
	_, inData := s.Data[key]
	_, inString := s.StringData[key]
	return inData || inString
}

// Env returns the value of a plain env variable of a container ("" when unset).
func Env(c corev1.Container, name string) string {
	for _, e := range c.Env {
		if e.Name == name {
			return e.Value
		}
	}
	return ""
}

// Peers lists the services (component labels) a NetworkPolicy rule's peers select by pod
// selector within the namespace, and whether any peer is something else (a namespace or IP block).
func Peers(peers []networkingv1.NetworkPolicyPeer) (services []string, others bool) {
	for _, p := range peers {
		if p.PodSelector != nil && p.NamespaceSelector == nil && p.IPBlock == nil {
			if c, ok := p.PodSelector.MatchLabels[ComponentLabel]; ok {
				services = append(services, c)
				continue
			}
		}
		others = true
	}
	slices.Sort(services)
	return services, others
}

// Ports lists the TCP ports of NetworkPolicy rule ports as "port/protocol".
func Ports(ports []networkingv1.NetworkPolicyPort) []string {
	var out []string
	for _, p := range ports {
		proto := "TCP"
		if p.Protocol != nil {
			proto = string(*p.Protocol)
		}
		if p.Port != nil {
			out = append(out, p.Port.String()+"/"+proto)
		}
	}
	slices.Sort(out)
	return out
}

// ServiceOfAddr returns the service a TALLY_*_ADDR value names (tally-ledger:9091 → ledger).
func ServiceOfAddr(release, addr string) string {
	host, _, _ := strings.Cut(addr, ":")
	return strings.TrimPrefix(host, release+"-")
}
