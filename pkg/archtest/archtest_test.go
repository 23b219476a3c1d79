package archtest

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

var update = flag.Bool("update", false, "rewrite testdata/known_*.txt from the violations found now (run after a merge that removes some)")

const header = `# Known violations of the import rules (pkg/archtest, docs/architecture.md). This list may only shrink:
# TestImportRules fails on a violation not listed here and on a listed one that is gone.
# Regenerate: go test ./pkg/archtest -run TestImportRules -update
`

// TestImportRules lists every package of the workspace and checks R1–R8 against the known lists.
func TestImportRules(t *testing.T) {
	found := Check(listWorkspace(t))
	byModule := map[string][]Violation{}
	for _, v := range found {
		byModule[v.Module()] = append(byModule[v.Module()], v)
	}
	files, err := filepath.Glob(filepath.Join("testdata", "known_*.txt"))
	require.NoError(t, err)
	modules := map[string]bool{}
	for m := range byModule {
		modules[m] = true
	}
	for _, f := range files {
		modules[strings.TrimSuffix(strings.TrimPrefix(filepath.Base(f), "known_"), ".txt")] = true
	}
	names := make([]string, 0, len(modules))
	for m := range modules {
		names = append(names, m)
	}
	sort.Strings(names)
	for _, m := range names {
		file := filepath.Join("testdata", "known_"+m+".txt")
		if *update {
			writeKnown(t, file, byModule[m])
			continue
		}
		known := readKnown(t, file)
		added, stale := Diff(byModule[m], known)
		for _, a := range added {
			t.Errorf("%s: new import rule violation (fix the import; see docs/architecture.md): %s", m, a)
		}
		for _, s := range stale {
			t.Errorf("%s: %s is fixed: delete the line from %s (or run with -update)", m, s, file)
		}
	}
}

func readKnown(t *testing.T, file string) []string {
	t.Helper()
	b, err := os.ReadFile(file)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	require.NoError(t, err)
	known, err := ParseKnown(string(b))
	require.NoError(t, err, file)
	return known
}

func writeKnown(t *testing.T, file string, vs []Violation) {
	t.Helper()
	if len(vs) == 0 {
		if err := os.Remove(file); err != nil && !errors.Is(err, os.ErrNotExist) {
			require.NoError(t, err)
		}
		return
	}
	var b strings.Builder
	b.WriteString(header)
	for _, v := range vs {
		b.WriteString(v.String() + "\n")
	}
	require.NoError(t, os.MkdirAll(filepath.Dir(file), 0o750))
	require.NoError(t, os.WriteFile(file, []byte(b.String()), 0o600))
	t.Logf("wrote %s (%d lines)", file, len(vs))
}

// listWorkspace runs `go list -json` over ./pkg/... and every module of go.work, from the workspace root.
func listWorkspace(t *testing.T) []Package {
	t.Helper()
	out, err := exec.CommandContext(t.Context(), "go", "env", "GOWORK").Output()
	require.NoError(t, err)
	work := strings.TrimSpace(string(out))
	if work == "" || work == "off" {
		t.Fatal("archtest needs the go.work workspace (GOWORK is off)")
	}
	root := filepath.Dir(work)
	patterns := []string{"./pkg/..."}
	services, err := filepath.Glob(filepath.Join(root, "services", "*", "go.mod"))
	require.NoError(t, err)
	for _, s := range services {
		patterns = append(patterns, "./services/"+filepath.Base(filepath.Dir(s))+"/...")
	}
	args := append([]string{"list", "-json=ImportPath,Name,Imports,TestImports,XTestImports"}, patterns...)
	cmd := exec.CommandContext(t.Context(), "go", args...)
	cmd.Dir = root
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err = cmd.Output()
	require.NoError(t, err, "go list: %s", stderr.String())
	var pkgs []Package
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p Package
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else {
			require.NoError(t, err)
		}
		pkgs = append(pkgs, p)
	}
	require.NotEmpty(t, pkgs)
	return pkgs
}
