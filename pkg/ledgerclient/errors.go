package ledgerclient

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// The kinds of ledger failure. Every error of a Client call is an *Error whose Kind is one of
// them (errors.Is), or the caller's own context error wrapped.
var (
	// ErrUnavailable: the ledger could not be asked or did not answer in time, failed inside, or
	// refused our own credentials (Error.Credentials). Retrying may help.
	ErrUnavailable = errors.New("ledger unavailable")
	// ErrBadReply: the ledger answered something this client cannot decode (an unknown
	// currency, nanos out of range, a missing field): a bug or version skew, never the caller's
	// fault.
	ErrBadReply = errors.New("malformed ledger reply")
	// ErrRefused: the ledger refused the request for good (InvalidArgument, OutOfRange, and via
	// Unwrap every FailedPrecondition, AlreadyExists and NotFound).
	ErrRefused = errors.New("ledger refused the request")
	// ErrFailedPrecondition: the account's state does not allow it (insufficient funds, a hold
	// no longer active).
	ErrFailedPrecondition = errors.New("ledger precondition failed")
	// ErrKeyReused: the idempotency key is bound to another request.
	ErrKeyReused = errors.New("idempotency key reused with another request")
	// ErrNotFound: what the request names does not exist.
	ErrNotFound = errors.New("not found in the ledger")
)

// Error is a failed ledger call.
type Error struct {
	Op          string     // what the call did, e.g. "debit"
	Code        codes.Code // the ledger's status code; codes.OK for a malformed reply
	Msg         string     // the ledger's status message, or what could not be decoded
	Kind        error      // one of the Err* sentinels
	Credentials bool       // the ledger refused our own token (Unauthenticated, PermissionDenied)
}

func (e *Error) Error() string {
	s := "ledger " + e.Op + ": " + e.Kind.Error()
	if e.Code != codes.OK {
		s += " (" + e.Code.String() + ")"
	}
	if e.Msg != "" {
		s += ": " + e.Msg
	}
	return s
}

// Unwrap returns Kind, plus ErrRefused for the definitive refusals (FailedPrecondition,
// AlreadyExists, NotFound). It never returns the gRPC status nor a money error, so a caller's
// mapping cannot mistake a ledger answer for its own.
func (e *Error) Unwrap() []error {
	if errors.Is(e.Kind, ErrFailedPrecondition) || errors.Is(e.Kind, ErrKeyReused) || errors.Is(e.Kind, ErrNotFound) {
		return []error{e.Kind, ErrRefused}
	}
	return []error{e.Kind}
}

// Classify turns the error of a ledger call into an *Error (nil stays nil). The caller's own
// context error (the request cancelled or past its deadline) passes through wrapped, so
// errors.Is(err, context.Canceled) holds; a deadline this client set is ErrUnavailable.
func Classify(op string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("ledger %s: %w", op, err)
	}
	st, ok := status.FromError(err)
	if !ok {
		return &Error{Op: op, Code: codes.Unknown, Msg: err.Error(), Kind: ErrUnavailable}
	}
	e := &Error{Op: op, Code: st.Code(), Msg: st.Message(), Kind: ErrUnavailable}
	switch st.Code() {
	case codes.InvalidArgument, codes.OutOfRange:
		e.Kind = ErrRefused
	case codes.FailedPrecondition:
		e.Kind = ErrFailedPrecondition
	case codes.AlreadyExists:
		e.Kind = ErrKeyReused
	case codes.NotFound:
		e.Kind = ErrNotFound
	case codes.Unauthenticated, codes.PermissionDenied:
		e.Credentials = true
	case codes.Canceled:
		// A gRPC Canceled whose context is alive (a server going away): an outage. A caller's
		// cancel is handled by the client before Classify, with the context at hand.
	}
	return e
}

// badReply is the error of a reply that cannot be decoded; cause is kept as text only.
func badReply(op string, cause error) error {
	return &Error{Op: op, Msg: fmt.Sprintf("%v", cause), Kind: ErrBadReply}
}
