// Package accesslog writes the gateway's one access-log line per REST request: method, route
// pattern, status, duration, caller kind and request id (and, through the logger's handler, the
// trace id). It never logs a token, a cookie, the path or the query string. /healthz is logged at
// Debug, every other request at Info.
package accesslog

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/tallyhq/tally/pkg/server"
	"github.com/tallyhq/tally/pkg/server/requestid"
	"github.com/tallyhq/tally/pkg/telemetry"
)

// Message is the message of every access-log line.
const Message = "http request"

// unmatched is the route of a request no route took.
const unmatched = "unmatched"

// healthRoute is logged at Debug.
const healthRoute = "/healthz"

// entry is what the handlers of one request tell its access-log line.
type entry struct {
	route string
	// caller is the kind of caller a service verified the request's token as (CallerInterceptor);
	// calls of one request may run at once (/healthz asks every backend).
	mu     sync.Mutex
	caller string
}

// setCaller records the kind of caller a service answered.
func (e *entry) setCaller(kind string) {
	e.mu.Lock()
	e.caller = kind
	e.mu.Unlock()
}

// callerKind is the kind of caller the line names: the one a service verified, else anonymous.
func (e *entry) callerKind() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.caller
}

type entryKey struct{}

// Observer is told of every request Handler serves: when it begins, and its route pattern, method,
// status and duration when it ends (the gateway's HTTP metrics, httpmetrics). The route is the
// one the access-log line names, so the metrics and the log can never disagree.
type Observer interface {
	Begin()
	End(route, method string, status int, elapsed time.Duration)
}

// Handler logs one line for every request next serves, when it is done, and tells obs (nil:
// nobody). It wraps the routing (Route, Pattern) so that the line names the route pattern, not
// the path.
func Handler(logger *slog.Logger, obs Observer, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		if obs != nil {
			obs.Begin()
		}
		e := &entry{caller: server.CallerAnonymous}
		ctx := context.WithValue(r.Context(), entryKey{}, e)
		rec := &recorder{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(rec, r.WithContext(ctx))
		elapsed := time.Since(start)
		route := e.route
		if route == "" {
			route = unmatched
		}
		if obs != nil {
			obs.End(route, r.Method, rec.status, elapsed)
		}
		telemetry.SetRoute(ctx, r.Method, route)
		level := slog.LevelInfo
		if route == healthRoute {
			level = slog.LevelDebug // probes, every few seconds
		}
		logger.LogAttrs(ctx, level, Message,
			slog.String("method", r.Method),
			slog.String("route", route),
			slog.Int("status", rec.status),
			slog.Duration("duration", elapsed),
			slog.String("caller", e.callerKind()),
			slog.String("request_id", requestID(ctx, rec)),
		)
	})
}

// requestID is the request's id: the one a handler inside gave it (server.HTTPLimits.Handler sets
// it on the response), else the one the context already carried.
func requestID(ctx context.Context, w http.ResponseWriter) string {
	if id := w.Header().Get(server.HTTPRequestIDHeader); id != "" {
		return id
	}
	return requestid.From(ctx)
}

// record tells the access-log line of r its route.
func record(r *http.Request, route string) {
	e, ok := r.Context().Value(entryKey{}).(*entry)
	if !ok || e.route != "" {
		return
	}
	e.route = route
}

// Route is grpc-gateway middleware (runtime.WithMiddlewares) naming the route of the request
// after its path template ("/v1/orgs/{org_id}/balance").
func Route(next runtime.HandlerFunc) runtime.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request, params map[string]string) {
		if p, ok := runtime.HTTPPattern(r.Context()); ok {
			// "/v1/orgs/{org_id=*}/balance" is written "/v1/orgs/{org_id}/balance" in the API.
			record(r, strings.ReplaceAll(p.String(), "=*}", "}"))
		}
		next(w, r, params)
	}
}

// Pattern names the route of the requests mux serves after the mux's pattern ("GET /healthz"),
// unless a route inside (Route) named it already.
func Pattern(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mux.ServeHTTP(w, r)
		if r.Pattern != "" { // set by mux on r: "GET /healthz", or "/v1/" for every method
			_, path, found := strings.Cut(r.Pattern, " ")
			if !found {
				path = r.Pattern
			}
			record(r, path)
		}
	})
}

// CallerInterceptor is the client interceptor of the gateway's connections to the services: it
// tells the access-log line of the request the kind of caller the service verified the token as
// (its server.CallerHeader response header), so that the line never trusts a token's unverified
// claims. A request no service answered with a verified token is logged as anonymous. It reads
// the header through grpc-gateway's own grpc.Header option when the call has one (no extra work
// per call), else through its own.
func CallerInterceptor(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker,
	opts ...grpc.CallOption) error {
	e, ok := ctx.Value(entryKey{}).(*entry)
	if !ok {
		return invoker(ctx, method, req, reply, cc, opts...)
	}
	ctx = metadata.AppendToOutgoingContext(ctx, server.CallerRequestHeader, "1")
	var header *metadata.MD
	for _, o := range opts {
		if h, ok := o.(grpc.HeaderCallOption); ok && h.HeaderAddr != nil {
			header = h.HeaderAddr
			break
		}
	}
	if header == nil {
		header = &metadata.MD{}
		opts = append(opts, grpc.Header(header))
	}
	err := invoker(ctx, method, req, reply, cc, opts...)
	if v := header.Get(server.CallerHeader); len(v) == 1 && knownKind(v[0]) {
		e.setCaller(v[0])
	}
	return err
}

// knownKind reports whether kind is one of server.CallerKind's.
func knownKind(kind string) bool {
	switch kind {
	case server.CallerMember, server.CallerAdmin, server.CallerOps, server.CallerService, server.CallerOther:
		return true
	}
	return false
}

// recorder remembers the status of the response.
type recorder struct {
	http.ResponseWriter
	status      int
	wroteHeader bool
}

func (r *recorder) WriteHeader(code int) {
	if !r.wroteHeader && code >= http.StatusOK { // 1xx are interim answers, not the status
		r.status, r.wroteHeader = code, true
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(p []byte) (int, error) {
	r.wroteHeader = true
	return r.ResponseWriter.Write(p)
}

// Flush lets streamed responses through (grpc-gateway asserts http.Flusher).
func (r *recorder) Flush() {
	r.wroteHeader = true
	_ = http.NewResponseController(r.ResponseWriter).Flush()
}

// Unwrap lets http.ResponseController reach the writer underneath.
func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }
