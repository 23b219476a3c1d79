package grpcapi

import (
	"context"
	"errors"
	"log/slog"
	"net"

	"github.com/jackc/pgx/v5/pgconn"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/tallyhq/tally/pkg/money"
	"github.com/tallyhq/tally/services/payments/internal/payment"
)

// toStatus is the one place where payments errors become gRPC statuses. Unknown errors are logged
// and masked.
func toStatus(logger *slog.Logger, err error) error {
	if err == nil {
		return nil
	}
	// Only statuses made here pass through: a wrapped status from a dependency would leak its
	// message and code.
	if _, ok := err.(interface{ GRPCStatus() *status.Status }); ok {
		return err
	}
	var code codes.Code
	switch {
	case errors.Is(err, payment.ErrInvalid), errors.Is(err, payment.ErrBadSignature),
		errors.Is(err, money.ErrMissing), errors.Is(err, money.ErrUnknownCurrency), errors.Is(err, money.ErrNanosOutOfRange),
		errors.Is(err, money.ErrSignMismatch), errors.Is(err, money.ErrOverflow):
		code = codes.InvalidArgument
	case errors.Is(err, payment.ErrNotFound):
		code = codes.NotFound
	case errors.Is(err, payment.ErrAlreadyExists):
		code = codes.AlreadyExists
	case errors.Is(err, payment.ErrFailedPrecondition), errors.Is(err, payment.ErrRejected):
		code = codes.FailedPrecondition
	case errors.Is(err, payment.ErrUnavailable):
		logger.Warn("dependency unavailable", "err", err)
		return status.Error(codes.Unavailable, "a dependency is unavailable, retry later")
	case errors.Is(err, context.Canceled):
		code = codes.Canceled
	case errors.Is(err, context.DeadlineExceeded):
		code = codes.DeadlineExceeded
	case databaseUnreachable(err):
		logger.Warn("database unavailable", "err", err)
		return status.Error(codes.Unavailable, "a dependency is unavailable, retry later")
	default:
		logger.Error("payments call failed", "err", err)
		return status.Error(codes.Internal, "internal error")
	}
	return status.Error(code, err.Error())
}

// databaseUnreachable reports whether err is PostgreSQL being out of reach rather than a wrong
// query: no connection, a connection lost, the server shutting down or out of connections. The
// caller is told to retry (a webhook answers 503, so Stripe does).
func databaseUnreachable(err error) bool {
	var connect *pgconn.ConnectError
	if errors.As(err, &connect) {
		return true
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		// 08: connection exception; 53: insufficient resources; 57: operator intervention
		// (admin shutdown, crash shutdown, cannot connect now).
		switch pgErr.Code[:min(2, len(pgErr.Code))] {
		case "08", "53", "57":
			return true
		}
		return false
	}
	var netErr net.Error
	return errors.As(err, &netErr)
}
