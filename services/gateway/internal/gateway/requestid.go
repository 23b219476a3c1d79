package gateway

import (
	"context"
	"net/http"
	"net/textproto"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"

	"github.com/tallyhq/tally/pkg/server/requestid"
)

// RequestIDHeader carries the request id over HTTP; over gRPC it is metadata x-request-id
// (pkg/server/requestid). A caller's id is kept when it is 1..64 of [A-Za-z0-9._-] (the rule of
// pkg/server), else the gateway mints one. Either way it is answered in the response and forwarded
// to the service, whose logs then carry the same id.
const RequestIDHeader = "X-Request-Id"

const requestIDKey = requestid.Header

// withRequestID gives every request an id: the caller's when valid, else a new one. It sets it on
// the request (so the incoming header matcher forwards it), in the context (for the gateway's own
// log lines and the hand-written routes) and on the response.
func withRequestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var id string
		if v := r.Header.Values(RequestIDHeader); len(v) == 1 {
			id = v[0]
		}
		ctx := requestid.With(r.Context(), id) // a new id unless id is acceptable
		id = requestid.From(ctx)
		r.Header.Set(RequestIDHeader, id)
		w.Header().Set(RequestIDHeader, id)
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// requestID is the id withRequestID gave the request ("" outside it).
func requestID(ctx context.Context) string { return requestid.From(ctx) }

// incomingHeader forwards X-Request-Id to the services as x-request-id, and the permanent HTTP
// headers as grpc-gateway does by default.
func incomingHeader(key string) (string, bool) {
	if textproto.CanonicalMIMEHeaderKey(key) == RequestIDHeader {
		return requestIDKey, true
	}
	return runtime.DefaultHeaderMatcher(key)
}

// outgoingHeader answers a service's x-request-id header as X-Request-Id — withRequestID has set
// it already to the same value, so it is not added twice — and other header metadata as
// grpc-gateway does by default (Grpc-Metadata-<key>).
func outgoingHeader(key string) (string, bool) {
	if key == requestIDKey {
		return "", false
	}
	return runtime.MetadataHeaderPrefix + key, true
}
