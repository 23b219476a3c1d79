package chartcheck

import (
	"bytes"
	"errors"
	"fmt"
	"regexp"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/yaml"
)

// Object is one rendered object: its template (the "# Source:" line), type and decoded value.
type Object struct {
	Source     string
	APIVersion string
	Kind       string
	Name       string
	Value      any // *appsv1.Deployment, *corev1.Secret, *ServiceMonitor, …
}

// types are the kinds the chart may render, each with the Go type it must decode into strictly.
var types = map[string]func() any{
	"v1/Secret":                               func() any { return &corev1.Secret{} },
	"v1/Service":                              func() any { return &corev1.Service{} },
	"v1/ServiceAccount":                       func() any { return &corev1.ServiceAccount{} },
	"apps/v1/Deployment":                      func() any { return &appsv1.Deployment{} },
	"batch/v1/Job":                            func() any { return &batchv1.Job{} },
	"policy/v1/PodDisruptionBudget":           func() any { return &policyv1.PodDisruptionBudget{} },
	"autoscaling/v2/HorizontalPodAutoscaler":  func() any { return &autoscalingv2.HorizontalPodAutoscaler{} },
	"networking.k8s.io/v1/NetworkPolicy":      func() any { return &networkingv1.NetworkPolicy{} },
	"monitoring.coreos.com/v1/ServiceMonitor": func() any { return &ServiceMonitor{} },
	"monitoring.coreos.com/v1/PrometheusRule": func() any { return &PrometheusRule{} },
}

var sourceLine = regexp.MustCompile(`(?m)^# Source: (.+)$`)

// Decode splits helm's output into documents and decodes each strictly: an unknown kind, an
// unknown or duplicated field, a wrong type, a bad quantity or a missing name is an error.
func Decode(out []byte) ([]Object, error) {
	var objs []Object
	var errs []error
	for _, doc := range splitDocuments(out) {
		src := "?"
		if m := sourceLine.FindSubmatch(doc); m != nil {
			src = string(m[1])
		}
		o, err := decodeOne(doc)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", src, err))
			continue
		}
		if o.Kind == "" {
			continue // a document of comments only
		}
		o.Source = src
		objs = append(objs, o)
	}
	return objs, errors.Join(errs...)
}

func splitDocuments(out []byte) [][]byte {
	var docs [][]byte
	for _, d := range regexp.MustCompile(`(?m)^---[ \t]*$`).Split(string(out), -1) {
		if strings.TrimSpace(d) != "" {
			docs = append(docs, []byte(d))
		}
	}
	return docs
}

func decodeOne(doc []byte) (Object, error) {
	var head struct {
		metav1.TypeMeta `json:",inline"`
		Metadata        struct {
			Name string `json:"name"`
		} `json:"metadata"`
	}
	if err := yaml.Unmarshal(doc, &head); err != nil {
		return Object{}, fmt.Errorf("not YAML: %w", err)
	}
	if head.Kind == "" && head.APIVersion == "" && len(bytes.TrimSpace(stripComments(doc))) == 0 {
		return Object{}, nil
	}
	key := head.APIVersion + "/" + head.Kind
	newValue, ok := types[key]
	if !ok {
		return Object{}, fmt.Errorf("kind %s is not one the chart may render", key)
	}
	v := newValue()
	if err := yaml.UnmarshalStrict(doc, v); err != nil {
		return Object{}, fmt.Errorf("%s %s: %w", key, head.Metadata.Name, err)
	}
	if errs := validation.IsDNS1123Subdomain(head.Metadata.Name); len(errs) > 0 {
		return Object{}, fmt.Errorf("%s name %q: %s", key, head.Metadata.Name, strings.Join(errs, "; "))
	}
	return Object{APIVersion: head.APIVersion, Kind: head.Kind, Name: head.Metadata.Name, Value: v}, nil
}

func stripComments(doc []byte) []byte {
	var b bytes.Buffer
	for _, line := range strings.Split(string(doc), "\n") {
		if !strings.HasPrefix(strings.TrimSpace(line), "#") {
			b.WriteString(line + "\n")
		}
	}
	return b.Bytes()
}
