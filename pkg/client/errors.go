package client

import (
	"errors"
	"fmt"

	moneypb "google.golang.org/genproto/googleapis/type/money"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/tallyhq/tally/pkg/ledgerclient"
	"github.com/tallyhq/tally/pkg/money"
)

// The kinds of failure, those of pkg/ledgerclient: every error of a call is an
// *ledgerclient.Error matching one of them with errors.Is, or the caller's context error wrapped.
var (
	ErrUnavailable        = ledgerclient.ErrUnavailable
	ErrBadReply           = ledgerclient.ErrBadReply
	ErrRefused            = ledgerclient.ErrRefused
	ErrFailedPrecondition = ledgerclient.ErrFailedPrecondition
	ErrKeyReused          = ledgerclient.ErrKeyReused
	ErrNotFound           = ledgerclient.ErrNotFound
)

// classify maps a gRPC error of method once, as pkg/ledgerclient does for the services.
func classify(method string, err error) error {
	return ledgerclient.Classify(method, err)
}

// reasonError carries the machine-readable reason of a streamed refusal and its details (the
// ErrorInfo metadata a unary Debit's status would carry).
type reasonError struct {
	err      error
	reason   string
	metadata map[string]string
}

func (e *reasonError) Error() string { return e.err.Error() + " [" + e.reason + "]" }
func (e *reasonError) Unwrap() error { return e.err }

// Reason returns the machine-readable reason the ledger gave for refusing a streamed debit
// (e.g. "INSUFFICIENT_FUNDS"), or "" when there is none.
func Reason(err error) string {
	var r *reasonError
	if errors.As(err, &r) {
		return r.reason
	}
	return ""
}

// ErrorMetadata returns the details the ledger gave with a streamed debit's refusal (e.g. the
// "project" whose spend limit was reached), or nil when there are none.
func ErrorMetadata(err error) map[string]string {
	var r *reasonError
	if errors.As(err, &r) {
		return r.metadata
	}
	return nil
}

// ackError turns the refusal of a streamed debit into the error a unary Debit would give.
func ackError(e interface {
	GetCode() int32
	GetMessage() string
	GetReason() string
	GetMetadata() map[string]string
}) error {
	err := classify("Debit", status.Error(codes.Code(e.GetCode()), e.GetMessage())) //nolint:gosec // a google.rpc.Code
	if e.GetReason() != "" || len(e.GetMetadata()) > 0 {
		return &reasonError{err: err, reason: e.GetReason(), metadata: e.GetMetadata()}
	}
	return err
}

func badReply(op string, cause error) error {
	return &ledgerclient.Error{Op: op, Msg: cause.Error(), Kind: ledgerclient.ErrBadReply}
}

// decode converts an amount of a reply; a missing amount is zero.
func decode(op, field string, m *moneypb.Money) (money.Money, error) {
	if m == nil {
		return money.Money{}, nil
	}
	v, err := money.FromProto(m)
	if err != nil {
		return money.Money{}, badReply(op, fmt.Errorf("%s: %s", field, err.Error()))
	}
	return v, nil
}
