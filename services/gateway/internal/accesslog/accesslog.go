// Package accesslog writes the gateway's one access-log line per REST request: method, route
// pattern, status, duration, caller kind and request id (and, through the logger's handler, the
// trace id). It never logs a token, a cookie, the path or the query string. /healthz is logged at
// Debug, every other request at Info.
package accesslog

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"

	"github.com/tallyhq/tally/pkg/auth"
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
	route  string
	caller string
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
		caller := e.caller
		if rec.status == http.StatusUnauthorized {
			caller = server.CallerAnonymous // the token was not accepted
		}
		level := slog.LevelInfo
		if route == healthRoute {
			level = slog.LevelDebug // probes, every few seconds
		}
		logger.LogAttrs(ctx, level, Message,
			slog.String("method", r.Method),
			slog.String("route", route),
			slog.Int("status", rec.status),
			slog.Duration("duration", elapsed),
			slog.String("caller", caller),
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

// record tells the access-log line of r its route and, from the Authorization header the
// backend call carries (the caller's own, or the session's), the caller's kind.
func record(r *http.Request, route string) {
	e, ok := r.Context().Value(entryKey{}).(*entry)
	if !ok || e.route != "" {
		return
	}
	e.route = route
	e.caller = callerKind(r.Header.Get("Authorization"))
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

// callerKind is the kind of caller the bearer token in header claims to be. The gateway does not
// verify tokens (the services do): Handler logs a request the services refused as 401 as
// anonymous.
func callerKind(header string) string {
	token, ok := strings.CutPrefix(header, "Bearer ")
	if !ok {
		return server.CallerAnonymous
	}
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return server.CallerAnonymous
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return server.CallerAnonymous
	}
	var claims struct {
		Subject string      `json:"sub"`
		Roles   []auth.Role `json:"roles"`
	}
	if json.Unmarshal(payload, &claims) != nil {
		return server.CallerAnonymous
	}
	return server.CallerKind(auth.Claims{Subject: claims.Subject, Roles: claims.Roles})
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
