package chartcheck

import (
	"errors"
	"fmt"
	"slices"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// ComponentLabel names the service of a pod (app.kubernetes.io/component).
const ComponentLabel = "app.kubernetes.io/component"

// Set is one rendering, indexed by kind.
type Set struct {
	Objects         []Object
	Deployments     []*appsv1.Deployment
	Jobs            []*batchv1.Job
	Secrets         []*corev1.Secret
	Services        []*corev1.Service
	PDBs            []*policyv1.PodDisruptionBudget
	HPAs            []*autoscalingv2.HorizontalPodAutoscaler
	NetworkPolicies []*networkingv1.NetworkPolicy
	ServiceMonitors []*ServiceMonitor
	PrometheusRules []*PrometheusRule
}

// Index sorts objs by kind.
func Index(objs []Object) Set {
	s := Set{Objects: objs}
	for _, o := range objs {
		switch v := o.Value.(type) {
		case *appsv1.Deployment:
			s.Deployments = append(s.Deployments, v)
		case *batchv1.Job:
			s.Jobs = append(s.Jobs, v)
		case *corev1.Secret:
			s.Secrets = append(s.Secrets, v)
		case *corev1.Service:
			s.Services = append(s.Services, v)
		case *policyv1.PodDisruptionBudget:
			s.PDBs = append(s.PDBs, v)
		case *autoscalingv2.HorizontalPodAutoscaler:
			s.HPAs = append(s.HPAs, v)
		case *networkingv1.NetworkPolicy:
			s.NetworkPolicies = append(s.NetworkPolicies, v)
		case *ServiceMonitor:
			s.ServiceMonitors = append(s.ServiceMonitors, v)
		case *PrometheusRule:
			s.PrometheusRules = append(s.PrometheusRules, v)
		}
	}
	return s
}

// Deployment returns the Deployment of a service (by its component label), or nil.
func (s Set) Deployment(service string) *appsv1.Deployment {
	for _, d := range s.Deployments {
		if d.Spec.Template.Labels[ComponentLabel] == service {
			return d
		}
	}
	return nil
}

// MinReplicas is the least number of replicas a Deployment runs: its HPA's minReplicas when an
// HPA scales it, else spec.replicas (1 when unset).
func (s Set) MinReplicas(d *appsv1.Deployment) int32 {
	for _, h := range s.HPAs {
		ref := h.Spec.ScaleTargetRef
		if ref.Kind == "Deployment" && ref.Name == d.Name && h.Spec.MinReplicas != nil {
			return *h.Spec.MinReplicas
		}
	}
	if d.Spec.Replicas == nil {
		return 1
	}
	return *d.Spec.Replicas
}

// CheckContainer holds a container to the policy: requests and limits of CPU and memory, a
// non-root, read-only, unprivileged, capability-free process under RuntimeDefault seccomp (pod
// settings count where the container has none); probes are checked separately (Deployments).
func CheckContainer(pod corev1.PodSpec, c corev1.Container) error {
	var errs []error
	for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		if q, ok := c.Resources.Requests[r]; !ok || q.IsZero() {
			errs = append(errs, fmt.Errorf("no %s request", r))
		}
		if q, ok := c.Resources.Limits[r]; !ok || q.IsZero() {
			errs = append(errs, fmt.Errorf("no %s limit", r))
		}
	}
	sc, psc := c.SecurityContext, pod.SecurityContext
	if sc == nil {
		sc = &corev1.SecurityContext{}
	}
	if psc == nil {
		psc = &corev1.PodSecurityContext{}
	}
	if !isTrue(sc.RunAsNonRoot) && !isTrue(psc.RunAsNonRoot) {
		errs = append(errs, errors.New("runAsNonRoot is not true"))
	}
	if uid := firstInt(sc.RunAsUser, psc.RunAsUser); uid == nil || *uid == 0 {
		errs = append(errs, errors.New("runAsUser is unset or 0"))
	}
	if !isTrue(sc.ReadOnlyRootFilesystem) {
		errs = append(errs, errors.New("readOnlyRootFilesystem is not true"))
	}
	if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		errs = append(errs, errors.New("allowPrivilegeEscalation is not false"))
	}
	if isTrue(sc.Privileged) {
		errs = append(errs, errors.New("privileged"))
	}
	if sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") || len(sc.Capabilities.Add) > 0 {
		errs = append(errs, errors.New("capabilities do not drop ALL (or add some)"))
	}
	seccomp := sc.SeccompProfile
	if seccomp == nil {
		seccomp = psc.SeccompProfile
	}
	if seccomp == nil || seccomp.Type != corev1.SeccompProfileTypeRuntimeDefault {
		errs = append(errs, errors.New("seccompProfile is not RuntimeDefault"))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("container %s: %w", c.Name, err)
	}
	return nil
}

// CheckProbes requires readiness and liveness probes that reach a port the container declares:
// gRPC health on a gRPC port, HTTP on an HTTP port.
func CheckProbes(c corev1.Container) error {
	var errs []error
	for _, p := range []struct {
		name  string
		probe *corev1.Probe
	}{{"readiness", c.ReadinessProbe}, {"liveness", c.LivenessProbe}, {"startup", c.StartupProbe}} {
		if p.probe == nil {
			if p.name != "startup" {
				errs = append(errs, fmt.Errorf("no %s probe", p.name))
			}
			continue
		}
		if err := probeReachesPort(c, *p.probe); err != nil {
			errs = append(errs, fmt.Errorf("%s probe: %w", p.name, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("container %s: %w", c.Name, err)
	}
	return nil
}

func probeReachesPort(c corev1.Container, p corev1.Probe) error {
	declared := func(name string, number int32) bool {
		return slices.ContainsFunc(c.Ports, func(cp corev1.ContainerPort) bool {
			return (name != "" && cp.Name == name) || (number != 0 && cp.ContainerPort == number)
		})
	}
	switch {
	case p.GRPC != nil:
		if !declared("grpc", p.GRPC.Port) || !slices.ContainsFunc(c.Ports, func(cp corev1.ContainerPort) bool {
			return cp.Name == "grpc" && cp.ContainerPort == p.GRPC.Port
		}) {
			return fmt.Errorf("gRPC port %d is not the container's grpc port", p.GRPC.Port)
		}
	case p.HTTPGet != nil:
		if !declared(p.HTTPGet.Port.StrVal, p.HTTPGet.Port.IntVal) || p.HTTPGet.Path == "" {
			return fmt.Errorf("HTTP probe %s on an undeclared port %s", p.HTTPGet.Path, p.HTTPGet.Port.String())
		}
	case p.TCPSocket != nil:
		if !declared(p.TCPSocket.Port.StrVal, p.TCPSocket.Port.IntVal) {
			return fmt.Errorf("TCP probe on an undeclared port %s", p.TCPSocket.Port.String())
		}
	default:
		return errors.New("neither gRPC, HTTP nor TCP")
	}
	return nil
}

// Selects reports whether a label selector selects pods with these labels.
func Selects(sel *metav1.LabelSelector, podLabels map[string]string) bool {
	if sel == nil {
		return false
	}
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		return false
	}
	return !s.Empty() && s.Matches(labels.Set(podLabels))
}

func isTrue(b *bool) bool { return b != nil && *b }

func firstInt(a, b *int64) *int64 {
	if a != nil {
		return a
	}
	return b
}
