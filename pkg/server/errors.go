package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/tallyhq/tally/pkg/auth"
	"github.com/tallyhq/tally/pkg/fieldviolation"
)

// ErrorRule maps the errors it matches to one gRPC status. Handlers return domain errors; the
// error interceptor turns them into statuses in this one place.
type ErrorRule struct {
	Is    error            // matched with errors.Is, or
	Match func(error) bool // a predicate (e.g. pg.IsUnavailable); a rule with neither matches nothing
	Code  codes.Code
	// Message is what the caller reads; "" keeps err.Error() (domain messages are written for
	// callers). Set it to mask the cause. Internal, Unknown and DataLoss are always masked.
	Message    string
	RetryAfter time.Duration // > 0 adds google.rpc.RetryInfo
	// Reason, when set, adds a google.rpc.ErrorInfo with this machine-readable reason
	// (UPPER_SNAKE_CASE, domain ErrorDomain) that a caller can branch on or show its user.
	Reason string
	// Metadata, when set with Reason, returns the ErrorInfo's metadata for err (e.g. which
	// project's limit refused it); nil adds none.
	Metadata func(error) map[string]string
	// Level of the one log line of the call. The zero value (Info) means Debug: a refusal is not
	// news. Use Warn for outages; Internal, Unknown and DataLoss are logged at Error at least.
	Level slog.Level
}

// matches reports whether the rule matches err.
func (r ErrorRule) matches(err error) bool {
	return (r.Is != nil && errors.Is(err, r.Is)) || (r.Match != nil && r.Match(err))
}

// ErrorDomain is the google.rpc.ErrorInfo domain of the reasons of ErrorRule.
const ErrorDomain = "tally"

// ErrorTable is a service's mapping of its errors: the first matching rule wins, then
// CommonErrors, then Internal.
type ErrorTable []ErrorRule

// Status returns the status the caller gets for err from a handler running under ctx, and the
// level to log it at. In order:
//   - a status made by the handler (err itself implements GRPCStatus) passes unchanged, at Debug;
//     a status wrapped in another error does not (its code and text are a dependency's);
//   - a context error while ctx is done: Canceled or DeadlineExceeded, the caller's own;
//   - the rules of t, then CommonErrors (where a context error of a live ctx, a dependency's
//     deadline, is Unavailable);
//   - anything else is Internal "internal error (request <id>)", at Error.
func (t ErrorTable) Status(ctx context.Context, err error) (st *status.Status, level slog.Level) {
	if err == nil {
		return status.New(codes.OK, ""), slog.LevelDebug
	}
	if s, ok := err.(interface{ GRPCStatus() *status.Status }); ok { //nolint:errorlint // unwrapped only, on purpose
		return s.GRPCStatus(), slog.LevelDebug
	}
	if ctx.Err() != nil && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)) {
		return status.New(status.FromContextError(ctx.Err()).Code(), ctx.Err().Error()), slog.LevelDebug
	}
	for _, rules := range [...]ErrorTable{t, CommonErrors} {
		for _, r := range rules {
			if r.matches(err) {
				return r.status(ctx, err)
			}
		}
	}
	return status.New(codes.Internal, internalMessage(ctx)), slog.LevelError
}

// Code returns the code err maps to from a handler whose caller is still waiting: for tables
// of error cases in tests.
func (t ErrorTable) Code(err error) codes.Code {
	st, _ := t.Status(context.Background(), err)
	return st.Code()
}

// status is the status of err under r.
func (r ErrorRule) status(ctx context.Context, err error) (*status.Status, slog.Level) {
	level := r.Level
	if level == slog.LevelInfo {
		level = slog.LevelDebug
	}
	msg := r.Message
	if msg == "" {
		msg = err.Error()
	}
	switch r.Code {
	case codes.Internal, codes.Unknown, codes.DataLoss:
		msg, level = internalMessage(ctx), max(level, slog.LevelError)
	case codes.OK:
		// A rule cannot make an error a success: servertest.CheckErrorTable refuses such a rule.
		return status.New(codes.Internal, internalMessage(ctx)), slog.LevelError
	}
	st := status.New(r.Code, msg)
	if r.Code == codes.InvalidArgument {
		st = withFieldViolations(st, err)
	}
	if r.Reason != "" {
		info := &errdetails.ErrorInfo{Reason: r.Reason, Domain: ErrorDomain}
		if r.Metadata != nil {
			info.Metadata = r.Metadata(err)
		}
		if withInfo, derr := st.WithDetails(info); derr == nil {
			st = withInfo
		}
	}
	if r.RetryAfter > 0 {
		if withRetry, derr := st.WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(r.RetryAfter)}); derr == nil {
			st = withRetry
		}
	}
	return st, level
}

// withFieldViolations adds google.rpc.BadRequest to st when err names the request fields it is
// about (pkg/fieldviolation: the errors of pkg/ids and pkg/textcheck, and those parse functions
// wrap with fieldviolation.Wrap).
func withFieldViolations(st *status.Status, err error) *status.Status {
	pairs := fieldviolation.All(err)
	if len(pairs) == 0 {
		return st
	}
	br := &errdetails.BadRequest{}
	for _, p := range pairs {
		br.FieldViolations = append(br.FieldViolations, &errdetails.BadRequest_FieldViolation{Field: p.Field, Description: p.Description})
	}
	if withDetails, derr := st.WithDetails(br); derr == nil {
		return withDetails
	}
	return st
}

// invalidArgument is the InvalidArgument status of err, with its field violations.
func invalidArgument(err error) error {
	return withFieldViolations(status.New(codes.InvalidArgument, err.Error()), err).Err()
}

// internalMessage is the masked text of an internal error: the request id lets an operator find
// the one log line of the cause.
func internalMessage(ctx context.Context) string {
	if id := RequestID(ctx); id != "" {
		return fmt.Sprintf("internal error (request %s)", id)
	}
	return "internal error"
}

// errorMapper is the error interceptor: it maps the errors of the calls it wraps with table and
// logs each failed call once, with its method and request id.
type errorMapper struct {
	table  ErrorTable
	logger *slog.Logger
}

// unary maps the error of a unary call.
func (e errorMapper) unary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	resp, err := handler(ctx, req)
	if err == nil {
		return resp, nil
	}
	return nil, e.mapError(ctx, info.FullMethod, err)
}

// stream maps the error of a streaming call.
func (e errorMapper) stream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	if err := handler(srv, ss); err != nil {
		return e.mapError(ss.Context(), info.FullMethod, err)
	}
	return nil
}

// mapError returns the status error of err and logs it.
func (e errorMapper) mapError(ctx context.Context, method string, err error) error {
	st, level := e.table.Status(ctx, err)
	attrs := []any{"method", method, "request_id", RequestID(ctx), "code", st.Code().String(), "err", err}
	if detail := auth.RefusalDetail(err); detail != nil {
		attrs = append(attrs, "detail", detail)
	}
	msg := "rpc refused" // the caller's mistake, or an outage (Warn)
	if level >= slog.LevelError {
		msg = "rpc failed" // ours: Internal (tests watch for this message)
	}
	e.logger.Log(ctx, level, msg, attrs...)
	if _, ok := err.(interface{ GRPCStatus() *status.Status }); ok { //nolint:errorlint // as in Status
		return err // keeps the handler's error (e.g. an auth refusal with its detail)
	}
	return st.Err()
}
