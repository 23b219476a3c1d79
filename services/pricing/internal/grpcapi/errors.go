package grpcapi

import (
	"google.golang.org/grpc/codes"

	"github.com/tallyhq/tally/pkg/server"
	"github.com/tallyhq/tally/services/pricing/internal/pricing"
)

// Errors maps the pricing domain's errors to statuses (pkg/server's interceptor applies it, then
// server.CommonErrors, which maps the catalog's errors).
var Errors = server.ErrorTable{
	{Is: pricing.ErrInvalid, Code: codes.InvalidArgument},
	{Is: pricing.ErrIdempotencyConflict, Code: codes.AlreadyExists},
}
