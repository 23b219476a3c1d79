// Package grpcmap holds the steps every service's internal/grpcapi shares when it maps protobuf to
// its domain and back: the one shape of a unary handler, timestamps and pages.
package grpcmap

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/tallyhq/tally/pkg/auth"
)

// Unary answers a unary call in the three steps of every grpcapi handler: parse maps the request
// into the domain (refusing what the request alone shows to be invalid), run is the use case and
// render maps its result to the response. An error of parse or run is returned as it is: the error
// interceptor of pkg/server turns it into a status, once, with the service's table.
func Unary[Req, In, Out, Resp any](
	ctx context.Context, req Req,
	parse func(context.Context, Req) (In, error),
	run func(context.Context, In) (Out, error),
	render func(Out) Resp,
) (Resp, error) {
	var none Resp
	in, err := parse(ctx, req)
	if err != nil {
		return none, err
	}
	out, err := run(ctx, in)
	if err != nil {
		return none, err
	}
	return render(out), nil
}

// Timestamp is t on the wire; the zero time is no timestamp (nil), so that unset stays unset.
func Timestamp(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}

// DefaultPageSize is the page size of a list request that sets none.
const DefaultPageSize = 50

// PageSize is a request's page_size with DefaultPageSize for 0 and at most limit; a negative size
// is refused, wrapping invalid (the service's invalid-argument error).
func PageSize(n int32, limit int, invalid error) (int, error) {
	switch {
	case n < 0:
		return 0, fmt.Errorf("%w: page_size must not be negative", invalid)
	case n == 0:
		return DefaultPageSize, nil
	case int(n) > limit:
		return limit, nil
	}
	return int(n), nil
}

// SeqToken reads a page_token that is a positive sequence number: "" is the first page (0), any
// other text is refused, wrapping invalid.
func SeqToken(tok string, invalid error) (int64, error) {
	if tok == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(tok, 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("%w: invalid page_token", invalid)
	}
	return n, nil
}

// PageRequest is a list request: a page size and the token of the page to read.
type PageRequest interface {
	GetPageSize() int32
	GetPageToken() string
}

// SeqPage reads a list request whose page tokens are sequence numbers (SeqToken): the page size
// (PageSize, at most limit) and the sequence the page starts before (0 for the first page).
func SeqPage(req PageRequest, limit int, invalid error) (size int, before int64, err error) {
	if size, err = PageSize(req.GetPageSize(), limit, invalid); err != nil {
		return 0, 0, err
	}
	if before, err = SeqToken(req.GetPageToken(), invalid); err != nil {
		return 0, 0, err
	}
	return size, before, nil
}

// Page cuts the rows a list read, one more than size to tell whether another page follows, to
// one page, and returns the next page's token (the token of its last row; "" on the last page).
func Page[T any](rows []T, size int, token func(T) string) ([]T, string) {
	if len(rows) <= size {
		return rows, ""
	}
	rows = rows[:size]
	return rows, token(rows[size-1])
}

// Map renders each of xs with f, in order; no xs is no slice (nil), as appending would leave it.
func Map[T, P any](xs []T, f func(T) P) []P {
	if len(xs) == 0 {
		return nil
	}
	out := make([]P, len(xs))
	for i, x := range xs {
		out[i] = f(x)
	}
	return out
}

// Actor adapts a parse step that records who asked (the subject of the caller's token, "" without
// one) to the parse step of Unary.
func Actor[Req, In any](parse func(Req, string) (In, error)) func(context.Context, Req) (In, error) {
	return func(ctx context.Context, req Req) (In, error) {
		c, _ := auth.FromContext(ctx)
		return parse(req, c.Subject)
	}
}
