package test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"

	ledgerv1 "github.com/tallyhq/tally/pkg/gen/tally/ledger/v1"
	"github.com/tallyhq/tally/pkg/telemetry/telemetrytest"
	"github.com/tallyhq/tally/services/ledger/ledgertest"
)

// TestDebitTraceLeadsToItsCommit: a Debit's group commit runs in a worker, outside the call's
// trace. With tracing on (exported to an in-test collector), the batch that committed the debit
// has a span of its own, linked to the Debit's span, which is linked back to it; the batch's
// PostgreSQL spans are its descendants, so a Debit's trace leads to its commit SQL.
func TestDebitTraceLeadsToItsCommit(t *testing.T) {
	collector := telemetrytest.Start(t)
	collector.Setenv(t)
	l := ledgertest.Start(t, ledgertest.Options{})
	ops := l.Client(t, ledgertest.OpsToken(t))
	svc := l.Client(t, ledgertest.ServiceToken(t, "model-backend"))
	credit(t, ops, "traced", 10*unit, "seed")
	_, err := svc.Debit(t.Context(), &ledgerv1.DebitRequest{OrgId: "traced", Amount: usd(unit), IdempotencyKey: "traced-debit-1", Description: "traced"})
	require.NoError(t, err)
	l.Stop(t) // the ledger flushes its spans when it stops

	spans := collector.Spans()
	var debit *telemetrytest.Span
	for i, s := range spans {
		if s.Service == "ledger" && s.Kind == tracepb.Span_SPAN_KIND_SERVER && s.Name == "tally.ledger.v1.LedgerService/Debit" {
			require.Nil(t, debit, "one Debit span")
			debit = &spans[i]
		}
	}
	require.NotNil(t, debit, "%+v", spans)
	require.Len(t, debit.Links, 1, "the Debit's span is linked to its batch")
	var batch *telemetrytest.Span
	for i, s := range spans {
		if s.SpanID == debit.Links[0].SpanID && s.TraceID == debit.Links[0].TraceID {
			batch = &spans[i]
		}
	}
	require.NotNil(t, batch, "the linked batch span was exported")
	require.Equal(t, "ledger.commit_batch", batch.Name)
	require.Contains(t, batch.Links, telemetrytest.Link{TraceID: debit.TraceID, SpanID: debit.SpanID}, "the batch links the Debit")
	var sql []string
	for _, s := range collector.Trace(batch.TraceID) {
		if strings.Contains(s.Scope, "otelpgx") && s.Attributes["db.query.text"] != "" && telemetrytest.Descends(spans, s, batch.SpanID) {
			sql = append(sql, s.Attributes["db.query.text"])
		}
	}
	require.NotEmpty(t, sql, "the batch's SQL spans are under the batch span")
	require.True(t, containsAny(sql, "COMMIT", "INSERT"), "the commit's writes are among them: %q", sql)
}

func containsAny(queries []string, words ...string) bool {
	for _, q := range queries {
		for _, w := range words {
			if strings.Contains(strings.ToUpper(q), w) {
				return true
			}
		}
	}
	return false
}
