// Package servertest checks a service's server.ErrorTable against the cases every tally service
// must answer the same way. Each service's grpcapi/errors_test.go calls CheckErrorTable.
package servertest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/tallyhq/tally/pkg/catalog"
	"github.com/tallyhq/tally/pkg/ids"
	"github.com/tallyhq/tally/pkg/ledgerclient"
	"github.com/tallyhq/tally/pkg/money"
	"github.com/tallyhq/tally/pkg/server"
	"github.com/tallyhq/tally/pkg/textcheck"
)

// requestID is the request id of every case's call.
const requestID = "servertest-request"

// cause is in the text of errors whose text must not reach the caller (an address, a query).
const cause = "db-7.internal:5432 SELECT balance FROM ledger.accounts"

// masked is the text of an Internal answer to the call of a case.
const masked = "internal error (request " + requestID + ")"

// caller is how the caller of a case's call is doing.
type caller int

const (
	waiting  caller = iota // still waiting for the answer
	canceled               // canceled the call
	timedOut               // its deadline passed
)

// errorCase is one error a handler returns and the answer every service gives.
type errorCase struct {
	Name   string
	Caller caller
	Err    error
	Code   codes.Code
	// Message is the exact text the caller reads; "" only requires that no text of Err's cause
	// (the cause) reaches the caller.
	Message string
	// Level is the least level of the call's log line.
	Level slog.Level
}

// cases are the shared conformance cases.
func cases() []errorCase {
	dependency := fmt.Errorf("calling %s: %w", cause, context.DeadlineExceeded)
	return []errorCase{
		{Name: "a status made by the handler passes", Err: status.Error(codes.NotFound, "no such hold"),
			Code: codes.NotFound, Message: "no such hold", Level: slog.LevelDebug},
		{Name: "a wrapped dependency status is internal", Err: fmt.Errorf("calling pricing: %w", status.Error(codes.NotFound, cause)),
			Code: codes.Internal, Message: masked, Level: slog.LevelError},
		{Name: "an unknown error is internal and masked", Err: fmt.Errorf("querying %s: %w", cause, errors.New("boom")),
			Code: codes.Internal, Message: masked, Level: slog.LevelError},
		{Name: "the caller canceled", Caller: canceled, Err: fmt.Errorf("querying %s: %w", cause, context.Canceled),
			Code: codes.Canceled, Level: slog.LevelDebug},
		{Name: "the caller's deadline passed", Caller: timedOut, Err: dependency,
			Code: codes.DeadlineExceeded, Level: slog.LevelDebug},
		{Name: "a dependency's deadline while the caller waits is unavailable", Err: dependency,
			Code: codes.Unavailable, Level: slog.LevelWarn},
		{Name: "a dependency canceled while the caller waits is unavailable", Err: fmt.Errorf("%s: %w", cause, context.Canceled),
			Code: codes.Unavailable, Level: slog.LevelWarn},
		{Name: "an invalid identifier is the caller's", Err: ids.OrgID("-acme"),
			Code: codes.InvalidArgument, Level: slog.LevelDebug},
		{Name: "a malformed ledger reply is internal", Err: fmt.Errorf("reading balance: %w", &ledgerclient.Error{Op: "balance", Msg: cause, Kind: ledgerclient.ErrBadReply}),
			Code: codes.Internal, Message: masked, Level: slog.LevelError},
		{Name: "a malformed ledger reply wrapping a money error is never the caller's", Err: fmt.Errorf("%w: %w", ledgerclient.ErrBadReply, money.ErrUnknownCurrency),
			Code: codes.Internal, Message: masked, Level: slog.LevelError},
		{Name: "the ledger unavailable is unavailable", Err: fmt.Errorf("crediting: %w", &ledgerclient.Error{Op: "credit", Code: codes.Internal, Msg: cause, Kind: ledgerclient.ErrUnavailable}),
			Code: codes.Unavailable, Level: slog.LevelWarn},
		{Name: "the ledger refusing our credentials is unavailable", Err: &ledgerclient.Error{Op: "balance", Code: codes.Unauthenticated, Msg: cause, Kind: ledgerclient.ErrUnavailable, Credentials: true},
			Code: codes.Unavailable, Level: slog.LevelWarn},
		{Name: "a deadline of the ledger client is unavailable", Err: ledgerclient.Classify("debit", fmt.Errorf("%s: %w", cause, context.DeadlineExceeded)),
			Code: codes.Unavailable, Level: slog.LevelWarn},
		{Name: "the caller's deadline during a ledger call", Caller: timedOut, Err: ledgerclient.Classify("debit", fmt.Errorf("%s: %w", cause, context.DeadlineExceeded)),
			Code: codes.DeadlineExceeded, Level: slog.LevelDebug},
		{Name: "a ledger refusal is a failed precondition", Err: &ledgerclient.Error{Op: "debit", Code: codes.FailedPrecondition, Msg: "insufficient funds", Kind: ledgerclient.ErrFailedPrecondition},
			Code: codes.FailedPrecondition, Level: slog.LevelDebug},
		{Name: "the database out of reach is unavailable", Err: fmt.Errorf("loading: %w", &pgconn.PgError{Code: "57P01", Message: cause}),
			Code: codes.Unavailable, Level: slog.LevelWarn},
		{Name: "invalid text is the caller's", Err: fmt.Errorf("member_id: %w", textcheck.ErrInvalid),
			Code: codes.InvalidArgument, Message: "member_id: invalid text", Level: slog.LevelDebug},
		{Name: "an invalid amount is the caller's", Err: fmt.Errorf("amount: %w", money.ErrUnknownCurrency),
			Code: codes.InvalidArgument, Message: "amount: unknown currency", Level: slog.LevelDebug},
		{Name: "an amount over the limit is the caller's", Err: fmt.Errorf("amount: %w", money.ErrOverLimit),
			Code: codes.InvalidArgument, Message: "amount: exceeds the per-request maximum", Level: slog.LevelDebug},
		{Name: "an unknown model is not found", Err: fmt.Errorf("model m-1: %w", catalog.ErrUnknownModel),
			Code: codes.NotFound, Message: "model m-1: unknown model", Level: slog.LevelDebug},
		{Name: "no price in force is a precondition", Err: fmt.Errorf("model m-1: %w", catalog.ErrNoPriceInForce),
			Code: codes.FailedPrecondition, Message: "model m-1: no price in force", Level: slog.LevelDebug},
	}
}

// CheckErrorTable requires table to be well formed (every rule matches something, none maps to
// OK, none is shadowed by an earlier one) and to answer every shared case as every service does.
func CheckErrorTable(t *testing.T, table server.ErrorTable) {
	t.Helper()
	for _, problem := range checkRules(table) {
		t.Error(problem)
	}
	for _, c := range cases() {
		t.Run(c.Name, func(t *testing.T) {
			if err := checkCase(table, c); err != nil {
				t.Error(err)
			}
		})
	}
}

// checkCase returns how table's answer to c differs from the expected one, or nil.
func checkCase(table server.ErrorTable, c errorCase) error {
	ctx, cancel := c.Caller.context()
	defer cancel()
	st, level := table.Status(ctx, c.Err)
	var problems []string
	if st.Code() != c.Code {
		problems = append(problems, fmt.Sprintf("code %s, want %s", st.Code(), c.Code))
	}
	if c.Message != "" && st.Message() != c.Message {
		problems = append(problems, fmt.Sprintf("message %q, want %q", st.Message(), c.Message))
	}
	if strings.Contains(st.Message(), cause) {
		problems = append(problems, fmt.Sprintf("message %q leaks the cause", st.Message()))
	}
	if level < c.Level {
		problems = append(problems, fmt.Sprintf("logged at %s, want at least %s", level, c.Level))
	}
	if problems == nil {
		return nil
	}
	return fmt.Errorf("%s: %s", c.Name, strings.Join(problems, "; "))
}

// context returns the context of a call whose caller is c.
func (c caller) context() (context.Context, context.CancelFunc) {
	ctx := server.WithRequestID(context.Background(), requestID)
	switch c {
	case canceled:
		ctx, cancel := context.WithCancel(ctx)
		cancel()
		return ctx, cancel
	case timedOut:
		return context.WithDeadline(ctx, time.Unix(0, 0))
	default:
		return context.WithCancel(ctx)
	}
}

// checkRules returns the problems of the rules of table.
func checkRules(table server.ErrorTable) []string {
	var problems []string
	for i, r := range table {
		switch {
		case r.Is == nil && r.Match == nil:
			problems = append(problems, fmt.Sprintf("rule %d (%s) matches nothing: set Is or Match", i, r.Code))
		case r.Code == codes.OK:
			problems = append(problems, fmt.Sprintf("rule %d (%v) maps an error to OK", i, r.Is))
		}
		if r.Is == nil {
			continue
		}
		for j, earlier := range table[:i] {
			if (earlier.Is != nil && errors.Is(r.Is, earlier.Is)) || (earlier.Match != nil && earlier.Match(r.Is)) {
				problems = append(problems, fmt.Sprintf("rule %d (%v) is shadowed by rule %d", i, r.Is, j))
				break
			}
		}
	}
	return problems
}
