package server

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/tallyhq/tally/pkg/catalog"
	"github.com/tallyhq/tally/pkg/ids"
	"github.com/tallyhq/tally/pkg/ledgerclient"
	"github.com/tallyhq/tally/pkg/money"
	"github.com/tallyhq/tally/pkg/pg"
	"github.com/tallyhq/tally/pkg/textcheck"
)

// unavailableMessage is the masked text of a dependency outage.
const unavailableMessage = "a dependency is unavailable, retry later"

// CommonErrors maps the errors of the shared packages the same way in every service. It applies
// after a service's own table (ErrorTable.Status), so a service maps its own errors first.
var CommonErrors = ErrorTable{
	// Ledger answers first: a malformed reply may wrap a money error, and is never the caller's.
	{Is: ledgerclient.ErrBadReply, Code: codes.Internal, Level: slog.LevelError},
	{Is: ledgerclient.ErrUnavailable, Code: codes.Unavailable, Message: unavailableMessage, RetryAfter: time.Second, Level: slog.LevelWarn},
	{Is: ledgerclient.ErrRefused, Code: codes.FailedPrecondition}, // the ledger's own message is kept
	{Match: pg.IsUnavailable, Code: codes.Unavailable, Message: unavailableMessage, Level: slog.LevelWarn},

	{Is: ErrStopping, Code: codes.Unavailable},

	// Reached only while the caller still waits (Status answers a done caller first): the
	// deadline or cancellation was a dependency's, not the caller's.
	{Match: isContextError, Code: codes.Unavailable, Message: unavailableMessage, Level: slog.LevelWarn},

	{Is: ids.ErrInvalid, Code: codes.InvalidArgument},
	{Is: textcheck.ErrInvalid, Code: codes.InvalidArgument},

	{Is: money.ErrMissing, Code: codes.InvalidArgument},
	{Is: money.ErrUnknownCurrency, Code: codes.InvalidArgument},
	{Is: money.ErrNanosOutOfRange, Code: codes.InvalidArgument},
	{Is: money.ErrSignMismatch, Code: codes.InvalidArgument},
	{Is: money.ErrOverflow, Code: codes.InvalidArgument},
	{Is: money.ErrOverLimit, Code: codes.InvalidArgument},

	{Is: catalog.ErrUnknownDimension, Code: codes.InvalidArgument},
	{Is: catalog.ErrInvalidQuantity, Code: codes.InvalidArgument},
	{Is: catalog.ErrTimeTooFarAhead, Code: codes.InvalidArgument},
	{Is: catalog.ErrInvalidPrice, Code: codes.InvalidArgument},
	{Is: catalog.ErrUnknownModel, Code: codes.NotFound},
	{Is: catalog.ErrUnknownInstanceType, Code: codes.NotFound},
	{Is: catalog.ErrNoPriceInForce, Code: codes.FailedPrecondition},
}

// isContextError reports whether err is a cancellation or a deadline.
func isContextError(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}
