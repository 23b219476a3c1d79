package test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	ledgerv1 "github.com/tallyhq/tally/pkg/gen/tally/ledger/v1"
	"github.com/tallyhq/tally/pkg/testenv"
	"github.com/tallyhq/tally/services/ledger/ledgertest"
	"github.com/tallyhq/tally/services/pricing/pricingtest"
)

// TestREADMEModelServerExampleRuns runs the README's "Calling tally from a model server" program
// (pkg/cmd/model-server-example, shown there verbatim) against a real ledger and pricing, and
// checks the balance it leaves: 100 usage debits (the 101st a replay) and one lease capture.
func TestREADMEModelServerExampleRuns(t *testing.T) {
	t.Parallel()
	root := filepath.Join("..", "..", "..")
	src, err := os.ReadFile(filepath.Join(root, "pkg", "cmd", "model-server-example", "main.go"))
	require.NoError(t, err)
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	require.NoError(t, err)
	require.Contains(t, string(readme), "```go\n"+string(src)+"```\n", "the README shows the program as it is")

	p := pricingtest.Start(t, pricingtest.Options{Secret: ledgertest.Secret, DatabaseURL: testenv.PostgresURL(t)})
	l := ledgertest.Start(t, ledgertest.Options{PricingAddr: p.Addr})
	ops := l.Client(t, ledgertest.OpsToken(t))
	credit(t, ops, "acme", 50*unit, "grant-1")
	usage := &ledgerv1.Usage{ModelId: "llama-3.1-8b-instruct", Quantities: map[string]string{"input_tokens": "1200", "output_tokens": "350"}}
	var price *ledgerv1.AuthorizeResponse
	require.Eventually(t, func() bool {
		price, err = ops.Authorize(t.Context(), &ledgerv1.AuthorizeRequest{OrgId: "acme", Usage: usage})
		return err == nil
	}, 30*time.Second, 20*time.Millisecond, "the ledger has the price list")

	cmd := exec.CommandContext(t.Context(), "go", "run", "./pkg/cmd/model-server-example")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "TALLY_LEDGER_ADDR="+l.Addr, "TALLY_SERVICE_TOKEN="+ledgertest.ServiceToken(t, "model-backend-1"))
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	require.Contains(t, string(out), "authorized: true")
	require.Contains(t, string(out), "replayed true")
	require.NotContains(t, string(out), "debit failed")
	require.True(t, strings.Contains(string(out), "1.00 USD captured"), "%s", out)
	want := 50*unit - 100*nanos(t, price.GetAmount()) - unit
	b := balance(t, ops, "acme")
	require.Equal(t, want, nanos(t, b.GetBalance()))
	require.Zero(t, nanos(t, b.GetHeld()))
	requireBalanced(t, l.DatabaseURL)
}
