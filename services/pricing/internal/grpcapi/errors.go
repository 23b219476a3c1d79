package grpcapi

import (
	"context"
	"errors"
	"log/slog"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/tallyhq/tally/pkg/catalog"
	"github.com/tallyhq/tally/services/pricing/internal/pricing"
)

// toStatus is the pricing service's one mapping of errors to gRPC statuses. Domain errors carry
// messages meant for the caller; anything else is logged and masked as "internal error".
func toStatus(logger *slog.Logger, method string, err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	code := codes.Internal
	switch {
	case errors.Is(err, catalog.ErrUnknownModel), errors.Is(err, catalog.ErrUnknownInstanceType):
		code = codes.NotFound
	case errors.Is(err, catalog.ErrUnknownDimension), errors.Is(err, catalog.ErrInvalidQuantity),
		errors.Is(err, catalog.ErrTimeTooFarAhead), errors.Is(err, catalog.ErrInvalidPrice),
		errors.Is(err, pricing.ErrInvalid):
		code = codes.InvalidArgument
	case errors.Is(err, catalog.ErrNoPriceInForce):
		code = codes.FailedPrecondition
	case errors.Is(err, pricing.ErrIdempotencyConflict):
		code = codes.AlreadyExists
	case errors.Is(err, context.Canceled):
		code = codes.Canceled
	case errors.Is(err, context.DeadlineExceeded):
		code = codes.DeadlineExceeded
	}
	if code == codes.Internal {
		logger.Error("request failed", "method", method, "err", err)
		return status.Error(codes.Internal, "internal error")
	}
	return status.Error(code, err.Error())
}
