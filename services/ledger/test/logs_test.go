package test

import (
	"bufio"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/metadata"

	ledgerv1 "github.com/tallyhq/tally/pkg/gen/tally/ledger/v1"
	"github.com/tallyhq/tally/pkg/server"
	"github.com/tallyhq/tally/pkg/telemetry"
	"github.com/tallyhq/tally/pkg/testenv"
	"github.com/tallyhq/tally/services/ledger/ledgertest"
)

// TestRequestLogLinesCarryRequestID: a line the ledger logs on a request's path (an adjustment,
// logged by grpcapi) is logged with the request's context, so it carries the request's id like
// the access-log line of the call does.
func TestRequestLogLinesCarryRequestID(t *testing.T) {
	t.Parallel()
	logs := &testenv.Buffer{}
	l := ledgertest.Start(t, ledgertest.Options{Logger: slog.New(telemetry.NewLogHandler(slog.NewJSONHandler(logs, nil)))})
	ops := l.Client(t, ledgertest.OpsToken(t))
	ctx := metadata.AppendToOutgoingContext(t.Context(), server.RequestIDHeader, "adjust-log-1")
	_, err := ops.Adjust(ctx, &ledgerv1.AdjustRequest{OrgId: "logs", Amount: usd(5 * unit), Reason: "goodwill", IdempotencyKey: "adj-log-1"})
	require.NoError(t, err)

	var adjustment map[string]any
	sc := bufio.NewScanner(strings.NewReader(logs.String()))
	for sc.Scan() {
		var line map[string]any
		require.NoError(t, json.Unmarshal(sc.Bytes(), &line), sc.Text())
		if line["msg"] == "ledger adjustment" {
			adjustment = line
		}
	}
	require.NotNil(t, adjustment, logs.String())
	require.Equal(t, "adjust-log-1", adjustment["request_id"], "the adjustment's line carries its request id")
}
