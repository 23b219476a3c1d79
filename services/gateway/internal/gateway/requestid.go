package gateway

import (
	"context"
	"net/textproto"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"

	"github.com/tallyhq/tally/pkg/server"
	"github.com/tallyhq/tally/pkg/server/requestid"
)

// RequestIDHeader carries the request id over HTTP; over gRPC it is metadata x-request-id
// (pkg/server/requestid). A caller's id is kept when it is 1..64 of [A-Za-z0-9._-] (the rule of
// pkg/server), else the gateway mints one (server.HTTPLimits.Handler). Either way it is answered
// in the response and forwarded to the service, whose logs then carry the same id.
const RequestIDHeader = server.HTTPRequestIDHeader

const requestIDKey = requestid.Header

// requestID is the id server.HTTPLimits.Handler gave the request ("" outside it).
func requestID(ctx context.Context) string { return requestid.From(ctx) }

// incomingHeader forwards X-Request-Id to the services as x-request-id, and the permanent HTTP
// headers as grpc-gateway does by default.
func incomingHeader(key string) (string, bool) {
	if textproto.CanonicalMIMEHeaderKey(key) == RequestIDHeader {
		return requestIDKey, true
	}
	return runtime.DefaultHeaderMatcher(key)
}

// outgoingHeader answers no header or trailer metadata of a service: the request id is answered
// by server.HTTPLimits.Handler already (the same value), a PDF's document number travels in
// Content-Disposition (documents.go), a replay in Idempotent-Replayed (replayedHeader), and the
// caller kind a service verified (server.CallerHeader) only in the access log.
func outgoingHeader(string) (string, bool) { return "", false }
