package client_test

import (
	"testing"

	"github.com/stretchr/testify/require"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/tallyhq/tally/pkg/client"
)

func TestTracerProviderTracesEveryCall(t *testing.T) {
	t.Parallel()
	m := newMemLedger()
	m.credit("acme", 10*unit)
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	c := newClient(t, m.serve(t), func(cfg *client.Config) { cfg.TracerProvider = tp })
	_, err := c.Authorize(t.Context(), client.AuthorizeRequest{OrgID: "acme", Amount: usdAmount(unit)})
	require.NoError(t, err)
	var names []string
	for _, s := range rec.Ended() {
		names = append(names, s.Name())
	}
	require.Contains(t, names, "tally.ledger.v1.LedgerService/Authorize")
}
