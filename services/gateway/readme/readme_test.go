// Package readme_test runs the examples of the top-level README's "Using it" section, as written,
// with bash, bin/grpcurl, curl and bin/tally-token, against a real ledger, pricing service and
// gateway: only the addresses (localhost:9091, :9092, :8080) are those of the test's servers.
package readme_test

import (
	"context"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tallyhq/tally/pkg/localstack"
	"github.com/tallyhq/tally/pkg/testenv"
	"github.com/tallyhq/tally/services/gateway/internal/gateway"
	"github.com/tallyhq/tally/services/ledger/ledgertest"
	"github.com/tallyhq/tally/services/pricing/pricingtest"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

// usingIt is the first bash block after "## Using it".
func usingIt(t *testing.T, readme string) string {
	t.Helper()
	_, section, ok := strings.Cut(readme, "\n## Using it\n")
	require.True(t, ok, "README.md has a Using it section")
	_, block, ok := strings.Cut(section, "```bash\n")
	require.True(t, ok)
	block, _, ok = strings.Cut(block, "```\n")
	require.True(t, ok)
	return block
}

// streams are the calls of the block that stream until interrupted; they run for a moment.
var streams = regexp.MustCompile(`(?m)^(bin/grpcurl .*\n(?:.*\\\n)*.*/Watch\w+)$`)

func TestREADMEUsingIt(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a ledger, pricing and a gateway")
	}
	root := repoRoot(t)
	raw, err := os.ReadFile(filepath.Join(root, "README.md"))
	require.NoError(t, err)
	block := usingIt(t, string(raw))

	p := pricingtest.Start(t, pricingtest.Options{Secret: ledgertest.Secret})
	l := ledgertest.Start(t, ledgertest.Options{PricingAddr: p.Addr})
	h, closeConns, err := gateway.New(t.Context(), gateway.Config{
		LedgerAddr: l.Addr, PricingAddr: p.Addr, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	require.NoError(t, err)
	t.Cleanup(closeConns)
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	gw := strings.TrimPrefix(srv.URL, "http://")

	// The block runs under bash -e (not pipefail: `curl … | head` is how a reader pages through a
	// document, and curl dies of the closed pipe), so a failing command fails the test; a command
	// substitution that failed leaves its variable empty, and the next call using it fails.
	// The checkout it runs in: bin/grpcurl from ./bin, bin/tally-token built from this
	// tree, .data/dev-token holding an ops token (make run writes one there).
	dir := t.TempDir()
	bin := filepath.Join(dir, "bin")
	require.NoError(t, os.MkdirAll(filepath.Join(dir, ".data"), 0o755))
	require.NoError(t, os.MkdirAll(bin, 0o755))
	grpcurl := filepath.Join(localstack.BinDir(), "grpcurl")
	_, err = os.Stat(grpcurl)
	require.NoError(t, err, "bin/grpcurl (make tools)")
	require.NoError(t, os.Symlink(grpcurl, filepath.Join(bin, "grpcurl")))
	build := exec.CommandContext(t.Context(), "go", "build", "-o", bin, "./pkg/cmd/tally-token")
	build.Dir = root
	out, err := build.CombinedOutput()
	require.NoError(t, err, "%s", out)
	require.NoError(t, os.WriteFile(filepath.Join(dir, ".data", "dev-token"), []byte(ledgertest.OpsToken(t)), 0o600))

	script := strings.NewReplacer("localhost:9091", l.Addr, "localhost:9092", p.Addr, "localhost:8080", gw).Replace(block)
	script = streams.ReplaceAllString(script, "timeout 3 $1 || test $$? -eq 124")
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-eux", "-c", script)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "TALLY_JWT_SECRET="+ledgertest.Secret)
	out, err = cmd.CombinedOutput()
	require.NoError(t, err, "the README's Using it block failed:\n%s", out)
	for _, want := range []string{`"transactionId"`, `"allowed": true`, `"status": "HOLD_STATUS_CAPTURED"`, `"backends"`, `"openapi"`} {
		require.Contains(t, string(out), want)
	}
}

func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	require.NoError(t, err)
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.work")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		require.NotEqual(t, parent, dir, "no go.work above the test")
		dir = parent
	}
}
