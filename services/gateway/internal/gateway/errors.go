package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"strings"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/tallyhq/tally/pkg/server"
)

// restErrors writes every REST error as {"code":"INVALID_ARGUMENT","message":...,"details":[...]}
// (server.WriteHTTPError) with the HTTP status of the code: 413 for a body over the limit, 408 for
// a body that did not arrive in time, 400 for JSON that does not decode, 404 for an unknown route
// and 405 (with Allow) for a known route with another method. Messages never carry decoder
// positions, Go type names, gRPC method names, dial errors or more than a short prefix of the
// caller's input; internal errors are logged and masked. Details are the service's
// google.rpc.BadRequest and RetryInfo, or the field a body decoder refused.
type restErrors struct {
	limits server.HTTPLimits
	logger *slog.Logger
}

// handler is the grpc-gateway error handler; ctx carries the service's reply metadata.
func (e restErrors) handler(ctx context.Context, _ *runtime.ServeMux, _ runtime.Marshaler, w http.ResponseWriter, r *http.Request, err error) {
	e.writeCtx(ctx, w, r, err)
}

// writeCtx answers r with err. A 5xx is logged here, once and with the request id, only when the
// gateway made it (transport to the service, marshalling): a service that answered has logged its
// own failure with the same request id already.
func (e restErrors) writeCtx(ctx context.Context, w http.ResponseWriter, r *http.Request, err error) {
	httpStatus, code, msg := e.translate(ctx, err)
	var details []*anypb.Any
	if code == status.Code(err) && code != codes.Internal {
		details = clientDetails(status.Convert(err))
	}
	if code == codes.InvalidArgument && len(details) == 0 {
		details = decoderFieldViolation(msg)
	}
	if httpStatus >= 500 && gatewayMade(ctx, err) {
		e.logger.Error("rest call failed", "method", r.Method, "route", routeOf(r), "code", code.String(),
			"request_id", requestID(ctx), "err", err)
	}
	w.Header().Del("Trailer")
	w.Header().Del("Transfer-Encoding")
	if code == codes.Unauthenticated {
		w.Header().Set("WWW-Authenticate", `Bearer realm="tally"`)
	}
	server.WriteHTTPError(w, httpStatus, code, msg, details...)
}

// clientDetails are the details of st a REST caller may read: the google.rpc error details but
// DebugInfo (which no service sends, and which would carry internals).
func clientDetails(st *status.Status) []*anypb.Any {
	var out []*anypb.Any
	for _, d := range st.Proto().GetDetails() {
		name := strings.TrimPrefix(d.GetTypeUrl(), "type.googleapis.com/")
		if strings.HasPrefix(name, "google.rpc.") && name != "google.rpc.DebugInfo" {
			out = append(out, d)
		}
	}
	return out
}

// bodyFieldMessages are the messages of cleanDecodeError and strictJSON that name a field.
var bodyFieldMessages = []*regexp.Regexp{
	regexp.MustCompile(`^the request body has an invalid value for (\w+)`),
	regexp.MustCompile(`^the request body has an unknown field "(\w+)"`),
	regexp.MustCompile(`^the request body repeats the field "(\w+)"`),
	regexp.MustCompile(`^([a-z][\w.\[\]]*) must be an (?:integer|enum)`),
}

// decoderFieldViolation is the google.rpc.BadRequest of a body decoder's message naming a field.
func decoderFieldViolation(msg string) []*anypb.Any {
	for _, re := range bodyFieldMessages {
		if m := re.FindStringSubmatch(msg); m != nil {
			br, err := anypb.New(&errdetails.BadRequest{FieldViolations: []*errdetails.BadRequest_FieldViolation{{Field: m[1], Description: msg}}})
			if err != nil {
				return nil
			}
			return []*anypb.Any{br}
		}
	}
	return nil
}

// translate maps err to the HTTP status, gRPC code and clean message of the response.
func (e restErrors) translate(ctx context.Context, err error) (int, codes.Code, string) {
	switch bodyErr := server.BodyError(ctx); {
	case errors.Is(bodyErr, server.ErrBodyTooLarge):
		return http.StatusRequestEntityTooLarge, codes.ResourceExhausted, e.limits.BodyTooLargeMessage()
	case errors.Is(bodyErr, server.ErrBodyTimeout):
		return http.StatusRequestTimeout, codes.DeadlineExceeded, "request body not received in time (TALLY_HTTP_READ_TIMEOUT)"
	}
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		return http.StatusRequestEntityTooLarge, codes.ResourceExhausted, e.limits.BodyTooLargeMessage()
	}
	var httpErr *runtime.HTTPStatusError
	if errors.As(err, &httpErr) {
		// The router's own refusals: a malformed percent-encoding in the path.
		return httpErr.HTTPStatus, codeOfHTTPStatus(httpErr.HTTPStatus), "malformed request path"
	}
	st := status.Convert(err)
	code, msg := st.Code(), st.Message()
	switch code {
	case codes.Internal, codes.Unknown, codes.DataLoss:
		if strings.HasPrefix(msg, "grpc: error while marshaling") {
			// The gateway's own client refused to encode the request: a path or query value that is
			// not valid UTF-8 reached a string field.
			return http.StatusBadRequest, codes.InvalidArgument, "the request contains invalid UTF-8 (path or query)"
		}
		return http.StatusInternalServerError, codes.Internal, "internal error"
	case codes.InvalidArgument:
		msg = cleanDecodeError(msg)
	case codes.ResourceExhausted:
		if strings.Contains(msg, "larger than max") {
			return http.StatusRequestEntityTooLarge, codes.ResourceExhausted,
				fmt.Sprintf("the request or its answer exceeds the message limit of %s", server.FormatByteSize(server.MaxGRPCMessageBytes))
		}
	case codes.Unavailable:
		if isTransportMessage(msg) {
			msg = "service unavailable, retry later"
		}
	case codes.DeadlineExceeded:
		msg = "the request did not complete in time"
	case codes.Canceled:
		msg = "the request was canceled"
	}
	httpStatus := runtime.HTTPStatusFromCode(code)
	if msg = withoutMethodNames(msg); msg == "" {
		msg = http.StatusText(httpStatus)
	}
	return httpStatus, code, msg
}

// gatewayMade reports whether err arose in the gateway rather than in a service's reply: not a
// gRPC status, or a status with no reply metadata at all (the call never reached a service; every
// service answers at least its x-request-id header).
func gatewayMade(ctx context.Context, err error) bool {
	if _, ok := status.FromError(err); !ok {
		return true
	}
	md, ok := runtime.ServerMetadataFromContext(ctx)
	return !ok || (len(md.HeaderMD) == 0 && len(md.TrailerMD) == 0)
}

// routingErrors answers requests no route takes, with the gRPC code of codeOfHTTPStatus; a 405
// names the route's methods in Allow.
type routingErrors struct{ routes *routeTable }

func (re routingErrors) handler(_ context.Context, _ *runtime.ServeMux, _ runtime.Marshaler, w http.ResponseWriter, r *http.Request, httpStatus int) {
	if httpStatus == http.StatusMethodNotAllowed {
		if allow := re.routes.allow(r.URL.Path); allow != "" {
			w.Header().Set("Allow", allow)
		}
	}
	server.WriteHTTPError(w, httpStatus, codeOfHTTPStatus(httpStatus), routingMessage(httpStatus))
}

// ServeHTTP answers a request no route of a hand-written http.ServeMux (the /auth/ routes) takes:
// 405 with Allow when the path has routes with other methods, 404 otherwise — the same answers as
// grpc-gateway's router.
func (re routingErrors) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	httpStatus := http.StatusNotFound
	if re.routes.allow(r.URL.Path) != "" {
		httpStatus = http.StatusMethodNotAllowed
	}
	re.handler(r.Context(), nil, nil, w, r, httpStatus)
}

func routingMessage(httpStatus int) string {
	switch httpStatus {
	case http.StatusMethodNotAllowed:
		return "method not allowed on this route"
	case http.StatusNotFound:
		return "no such route"
	case http.StatusBadRequest:
		return "malformed request path"
	}
	return http.StatusText(httpStatus)
}

// refuseOversizedBody fails a call whose body ran over the limit although the route ignored the
// body (the generated GET handlers drain it): the limit holds for every route.
func refuseOversizedBody(ctx context.Context, _ http.ResponseWriter, _ proto.Message) error {
	if err := server.BodyError(ctx); err != nil {
		return status.Error(codes.InvalidArgument, err.Error())
	}
	return nil
}

// codeOfHTTPStatus is the gRPC code written in the body of an error the gateway answers itself.
// A method a route does not have is codes.Unimplemented ("UNIMPLEMENTED"), gRPC's code for
// exactly that; the HTTP status stays 405 with Allow, not the 501 grpc-gateway would derive. This
// is the finished answer issue 15 asked for (REST errors: 405 with Allow), not a stand-in: no
// open issue will replace it.
func codeOfHTTPStatus(httpStatus int) codes.Code {
	switch httpStatus {
	case http.StatusBadRequest:
		return codes.InvalidArgument
	case http.StatusNotFound:
		return codes.NotFound
	case http.StatusMethodNotAllowed:
		return codes.Unimplemented
	case http.StatusRequestEntityTooLarge:
		return codes.ResourceExhausted
	}
	return codes.Unknown
}

// routeOf names the route of r for logs without echoing the raw path: the first two segments.
func routeOf(r *http.Request) string {
	parts := strings.SplitN(strings.TrimPrefix(r.URL.Path, "/"), "/", 3)
	if len(parts) > 2 {
		parts = parts[:2]
	}
	return truncate("/"+strings.Join(parts, "/"), 32)
}

// maxEcho bounds how much of a caller's input an error message repeats.
const maxEcho = 32

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	// Cut at a rune boundary so the message stays valid UTF-8.
	for n > 0 && n < len(s) && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n]
}

// quoteInput quotes a short prefix of a caller's input.
func quoteInput(s string) string { return fmt.Sprintf("%q", truncate(strings.Trim(s, `"`), maxEcho)) }

var (
	protoPrefix    = regexp.MustCompile(`^proto:[\s\x{00a0}]+`)
	protoPosition  = regexp.MustCompile(`^\(line \d+:\d+\):[\s\x{00a0}]*`)
	unknownField   = regexp.MustCompile(`^unknown field (.*)$`)
	duplicateField = regexp.MustCompile(`^duplicate field (.*)$`)
	invalidValue   = regexp.MustCompile(`^invalid value for \w+ field (\w+):`)
	wellKnownValue = regexp.MustCompile(`^invalid google\.protobuf\.(\w+) value`)
	pathMismatch   = regexp.MustCompile(`^type mismatch, parameter: (\w+), error:`)
	missingParam   = regexp.MustCompile(`^missing parameter (\w+)$`)
	queryField     = regexp.MustCompile(`^parsing (?:field|list|map key|map value) "(\w+)":`)
	queryRepeated  = regexp.MustCompile(`^too many values for field "(\w+)"`)
	// methodName matches a gRPC method name such as /tally.ledger.v1.LedgerService/GetBalance,
	// with an optional "method " before it and ": " after it.
	methodName = regexp.MustCompile(`(?:method\s+)?/?[a-z][a-z0-9_]*(?:\.[a-z0-9_]+)+\.[A-Z]\w*/[A-Z]\w*:?\s*`)
)

// The messages of a body that is no JSON, or no JSON of the request's shape.
const (
	msgNotJSON = "the request body is not valid JSON"
	msgNoMatch = "the request body does not match the request"
)

// cleanDecodeError rewrites the messages of the JSON, protojson and grpc-gateway decoders (which
// carry positions, type names and whole input values) into short ones naming the field; messages
// authored by the services pass through.
func cleanDecodeError(msg string) string {
	// protojson's prefix is "proto:" and a space or, at random, a no-break space.
	if loc := protoPrefix.FindStringIndex(msg); loc != nil {
		rest := protoPosition.ReplaceAllString(msg[loc[1]:], "")
		switch {
		case strings.Contains(rest, "invalid UTF-8"):
			return "the request body contains invalid UTF-8"
		case strings.HasPrefix(rest, "syntax error"):
			return msgNotJSON
		case strings.Contains(rest, "recursion depth"):
			return "the request body is nested too deeply"
		}
		if m := unknownField.FindStringSubmatch(rest); m != nil {
			return "the request body has an unknown field " + quoteInput(m[1])
		}
		if m := duplicateField.FindStringSubmatch(rest); m != nil {
			return "the request body repeats the field " + quoteInput(m[1])
		}
		if m := invalidValue.FindStringSubmatch(rest); m != nil {
			return "the request body has an invalid value for " + m[1]
		}
		if m := wellKnownValue.FindStringSubmatch(rest); m != nil {
			return "the request body has an invalid " + strings.ToLower(m[1]) + " value"
		}
		return msgNoMatch
	}
	switch {
	case strings.Contains(msg, "exceeded max depth"):
		return "the request body is nested too deeply"
	case strings.HasPrefix(msg, "invalid character"), strings.Contains(msg, "unexpected EOF"),
		strings.HasPrefix(msg, "unexpected end of JSON"), strings.HasPrefix(msg, "json: "):
		return msgNotJSON
	case strings.HasPrefix(msg, "http: request body too large"):
		return "the request body is too large"
	}
	if m := pathMismatch.FindStringSubmatch(msg); m != nil {
		return "invalid path parameter " + m[1]
	}
	if m := missingParam.FindStringSubmatch(msg); m != nil {
		return "missing path parameter " + m[1]
	}
	if m := queryField.FindStringSubmatch(msg); m != nil {
		return "invalid value for the query parameter " + m[1]
	}
	if m := queryRepeated.FindStringSubmatch(msg); m != nil {
		return "the query parameter " + m[1] + " is given more than once"
	}
	if strings.HasPrefix(msg, "invalid path:") || strings.HasPrefix(msg, "field already set for oneof") ||
		msg == "no field path" || msg == "no value provided" || looksInternal(msg) {
		return "invalid query parameters"
	}
	return msg
}

// looksInternal spots library text that must not reach a caller.
func looksInternal(msg string) bool {
	for _, s := range []string{"strconv.", "Go value", "Go struct", "proto:", "(line ", "grpc:", "reflect"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}

// isTransportMessage spots gRPC client connection errors, which name internal addresses.
func isTransportMessage(msg string) bool {
	for _, s := range []string{"connection error", "transport", "dial", "name resolver", "connection refused"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}

func withoutMethodNames(msg string) string {
	return strings.TrimSpace(methodName.ReplaceAllString(msg, ""))
}
