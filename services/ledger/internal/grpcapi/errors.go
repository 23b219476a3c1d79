package grpcapi

import (
	"errors"
	"log/slog"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/tallyhq/tally/pkg/server"
	"github.com/tallyhq/tally/services/ledger/internal/app"
	"github.com/tallyhq/tally/services/ledger/internal/ledger"
)

// Errors maps the ledger's errors to gRPC statuses (pkg/server's error interceptor applies it,
// then server.CommonErrors, then a masked Internal). Handlers just return errors.
//
// Outages come first, with fixed messages and a RetryInfo: they may wrap a context error of the
// ledger's own deadline, and their causes name the ledger's dependencies. The database being
// down is logged once per outage by the committer, so each call logs it at Debug only.
var Errors = server.ErrorTable{
	{Is: ledger.ErrUnavailable, Code: codes.Unavailable, RetryAfter: 250 * time.Millisecond, Level: slog.LevelDebug,
		Message: "the ledger's database is unavailable; retry (a write with the same idempotency key)"},
	{Is: app.ErrShuttingDown, Code: codes.Unavailable, RetryAfter: 100 * time.Millisecond,
		Message: "the ledger is shutting down; retry"},
	{Is: app.ErrPricingUnavailable, Code: codes.Unavailable, RetryAfter: time.Second,
		Message: app.ErrPricingUnavailable.Error() + "; retry"},

	// A residency fence outlasting the router's hops, or a move in flight: the next try finds
	// the organization on its new shard.
	{Is: ledger.ErrFrozen, Code: codes.Unavailable, RetryAfter: 100 * time.Millisecond,
		Message: "the organization is moving between ledger shards; retry (a write with the same idempotency key)"},
	{Is: ledger.ErrMoved, Code: codes.Unavailable, RetryAfter: 100 * time.Millisecond,
		Message: "the organization moved to another ledger shard; retry (a write with the same idempotency key)"},

	{Is: ledger.ErrInvalid, Code: codes.InvalidArgument},
	{Is: ledger.ErrCurrencyMismatch, Code: codes.InvalidArgument},
	{Is: ledger.ErrOverflow, Code: codes.InvalidArgument},
	{Is: ledger.ErrInsufficientFunds, Code: codes.FailedPrecondition},
	{Is: ledger.ErrSpendLimitReached, Code: codes.FailedPrecondition, Reason: ledger.ReasonSpendLimitReached, Metadata: limitedProject},
	{Is: ledger.ErrHoldNotActive, Code: codes.FailedPrecondition},
	{Is: ledger.ErrIdempotencyConflict, Code: codes.AlreadyExists},
	{Is: ledger.ErrHoldNotFound, Code: codes.NotFound},
}

// limitedProject names the project whose own limit refused a charge (ErrorInfo metadata
// "project"); nil for the organization's limit.
func limitedProject(err error) map[string]string {
	var pe *ledger.ProjectLimitError
	if errors.As(err, &pe) {
		return map[string]string{"project": pe.Project}
	}
	return nil
}

// errorInfoMetadata is the metadata of st's ErrorInfo (nil without one): what a streamed
// debit's acknowledgement carries of the status a unary Debit would return.
func errorInfoMetadata(st *status.Status) map[string]string {
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok {
			return info.GetMetadata()
		}
	}
	return nil
}
