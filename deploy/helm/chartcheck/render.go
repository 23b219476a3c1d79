// Package chartcheck renders the Helm chart deploy/helm/tally with the pinned helm binary and
// decodes every object strictly against the Kubernetes API types (k8s.io/api; unknown fields are
// refused), so `make helm-check` validates the chart without a cluster. Its tests hold the policy
// (probes, limits, non-root, secrets, PDBs, network policies, replicas) and check the Dockerfile.
package chartcheck

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// HelmEnv names the helm binary to use; by default the repository's bin/helm (`make tools`).
const HelmEnv = "TALLY_HELM"

// KubeVersion is the Kubernetes version the chart is rendered for. A helm built with `go install`
// carries no version of its own (the release builds set one by -ldflags) and would claim v1.20.
const KubeVersion = "1.31.0"

// renderTimeout bounds one helm invocation (a render takes well under a second).
const renderTimeout = 2 * time.Minute

// Repo is the repository root, found from dir (a directory inside it) by its go.work.
func Repo(dir string) (string, error) {
	d, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("resolving %s: %w", dir, err)
	}
	for {
		if _, err := os.Stat(filepath.Join(d, "go.work")); err == nil {
			return d, nil
		}
		parent := filepath.Dir(d)
		if parent == d {
			return "", fmt.Errorf("no go.work above %s", dir)
		}
		d = parent
	}
}

// Helm returns the helm binary: $TALLY_HELM, else <repo>/bin/helm; an error says how to get it.
func Helm(repo string) (string, error) {
	p := os.Getenv(HelmEnv)
	if p == "" {
		p = filepath.Join(repo, "bin", "helm")
	}
	found, err := exec.LookPath(p)
	if err != nil {
		return "", fmt.Errorf("helm not found at %s (run `make tools`, or set %s): %w", p, HelmEnv, err)
	}
	return found, nil
}

// Run runs helm with args and returns its standard output; a failure carries its standard error.
func Run(ctx context.Context, helm string, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, renderTimeout)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, helm, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	// A private, empty helm home: no repositories, plugins or caches of the machine are read.
	home := filepath.Join(os.TempDir(), "tally-chartcheck-helm")
	cmd.Env = append(os.Environ(), "HELM_CONFIG_HOME="+home, "HELM_CACHE_HOME="+home, "HELM_DATA_HOME="+home)
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("helm %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.Bytes(), nil
}

// Template renders chart as release "tally" in namespace "tally" with the extra helm args
// (-f values files, --set) and returns the decoded objects.
func Template(ctx context.Context, helm, chart string, args ...string) ([]Object, error) {
	base := []string{"template", "tally", chart, "--namespace", "tally", "--kube-version", KubeVersion}
	out, err := Run(ctx, helm, append(base, args...)...)
	if err != nil {
		return nil, err
	}
	objs, err := Decode(out)
	if err != nil {
		return nil, err
	}
	if len(objs) == 0 {
		return nil, errors.New("helm rendered no objects")
	}
	return objs, nil
}
