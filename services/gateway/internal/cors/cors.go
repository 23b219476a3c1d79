// Package cors lets the pages of a few exact origins (TALLY_CORS_ORIGINS) call the gateway from
// the browser: preflights are answered, responses carry Access-Control-Allow-Origin for those
// origins and nothing for any other.
package cors

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/tallyhq/tally/services/gateway/internal/session"
)

// Policy values.
var (
	// AllowedMethods are the methods of the REST routes.
	AllowedMethods = []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete}
	// AllowedHeaders are the request headers a page may send.
	AllowedHeaders = []string{"Authorization", "Content-Type", "X-CSRF-Token", "X-Request-Id", "If-None-Match"}
	// ExposedHeaders are the response headers a page may read.
	ExposedHeaders = []string{"Allow", "Content-Disposition", "ETag", "Idempotent-Replayed", "X-Request-Id"}
	// MaxAge is how long a browser may keep a preflight's answer.
	MaxAge = 10 * time.Minute
)

// Handler adds CORS to next for origins (exact, canonical scheme://host[:port], as
// session.ParseOrigins returns them; matched by session.Origins.Allowed). Preflights are answered
// (204) even with no origin configured: without the CORS headers, which is the browser's refusal.
func Handler(origins session.Origins, next http.Handler) http.Handler {
	methods := strings.Join(AllowedMethods, ", ")
	headers := strings.Join(AllowedHeaders, ", ")
	exposed := strings.Join(ExposedHeaders, ", ")
	maxAge := strconv.Itoa(int(MaxAge.Seconds()))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		if len(origins) > 0 {
			h.Add("Vary", "Origin")
		}
		origin := r.Header.Get("Origin")
		ok := origin != "" && origins.Allowed(origin)
		if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
			// A preflight: answered here, never passed on. A foreign origin gets no CORS
			// headers, so its browser refuses the request.
			h.Add("Vary", "Access-Control-Request-Method")
			h.Add("Vary", "Access-Control-Request-Headers")
			if ok {
				h.Set("Access-Control-Allow-Origin", origin)
				h.Set("Access-Control-Allow-Credentials", "true")
				h.Set("Access-Control-Allow-Methods", methods)
				h.Set("Access-Control-Allow-Headers", headers)
				h.Set("Access-Control-Max-Age", maxAge)
			}
			w.WriteHeader(http.StatusNoContent)
			return
		}
		if ok {
			h.Set("Access-Control-Allow-Origin", origin)
			h.Set("Access-Control-Allow-Credentials", "true")
			h.Set("Access-Control-Expose-Headers", exposed)
		}
		next.ServeHTTP(w, r)
	})
}
