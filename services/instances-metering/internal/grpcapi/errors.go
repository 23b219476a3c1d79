package grpcapi

import (
	"log/slog"

	"google.golang.org/grpc/codes"

	"github.com/tallyhq/tally/pkg/server"
	"github.com/tallyhq/tally/services/instances-metering/internal/rental"
)

// Errors maps the metering domain's errors to statuses (pkg/server's interceptor applies it,
// then server.CommonErrors: ledger outages and malformed replies, ids, catalog errors).
var Errors = server.ErrorTable{
	{Is: rental.ErrInvalid, Code: codes.InvalidArgument},
	{Is: rental.ErrNotFound, Code: codes.NotFound},
	{Is: rental.ErrConflict, Code: codes.AlreadyExists},
	{Is: rental.ErrInsufficientCredits, Code: codes.FailedPrecondition},
	{Is: rental.ErrEnded, Code: codes.FailedPrecondition},
	{Is: rental.ErrNotRentable, Code: codes.FailedPrecondition},
	{Is: rental.ErrChargeRefused, Code: codes.FailedPrecondition},
	{Is: rental.ErrCatalogNotReady, Code: codes.Unavailable, Level: slog.LevelWarn},
	{Is: rental.ErrStarting, Code: codes.Unavailable},
}
