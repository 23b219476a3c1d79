package grpcapi

import (
	"log/slog"

	"google.golang.org/grpc/codes"

	"github.com/tallyhq/tally/pkg/server"
	"github.com/tallyhq/tally/services/payments/internal/payment"
)

// Errors maps the payments errors to gRPC statuses; the error interceptor of pkg/server applies
// it, then server.CommonErrors (ledger answers, PostgreSQL out of reach, identifiers, money,
// context), and masks the rest as Internal. Handlers just return their errors.
var Errors = server.ErrorTable{
	// A forged or stale webhook delivery is worth a warning.
	{Is: payment.ErrBadSignature, Code: codes.InvalidArgument, Level: slog.LevelWarn},
	{Is: payment.ErrInvalid, Code: codes.InvalidArgument},
	{Is: payment.ErrNotFound, Code: codes.NotFound},
	{Is: payment.ErrAlreadyExists, Code: codes.AlreadyExists},
	{Is: payment.ErrFailedPrecondition, Code: codes.FailedPrecondition},
	// A dependency (the ledger, Stripe) refused for good: the caller reads why.
	{Is: payment.ErrRejected, Code: codes.FailedPrecondition},
	// Stripe or the ledger out of reach, or a payment changed while crediting: a webhook answers
	// 503 and Stripe retries; the cause stays in the log.
	{Is: payment.ErrUnavailable, Code: codes.Unavailable, Message: "a dependency is unavailable, retry later", Level: slog.LevelWarn},
}
