// Package gateway is tally's REST front door: grpc-gateway routes that dial each service like any
// gRPC client (so authentication, validation and metrics run for REST too), the OpenAPI document,
// the Stripe webhook endpoint and ETags for the public price list. It is also the console's
// backend: the sign-in routes and the session cookie (package signin), the console's files
// (package console), CORS (package cors) and PDF downloads named after their document.
package gateway

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/tallyhq/tally/pkg/gen/openapi"
	ledgerv1 "github.com/tallyhq/tally/pkg/gen/tally/ledger/v1"
	"github.com/tallyhq/tally/pkg/server"
	"github.com/tallyhq/tally/services/gateway/console"
	"github.com/tallyhq/tally/services/gateway/cors"
	"github.com/tallyhq/tally/services/gateway/signin"
)

// Config names the gRPC address of each service; an empty address leaves its routes out.
type Config struct {
	LedgerAddr        string
	PricingAddr       string
	PaymentsAddr      string
	InstancesAddr     string
	NotificationsAddr string
	Logger            *slog.Logger
	// Limits bound every request (body size, handler deadline); zero fields take the defaults.
	// cmd/gateway serves the handler with the same limits' timeouts (HTTPLimits.Server).
	Limits server.HTTPLimits
	// SignIn serves /auth/ and authenticates REST calls by the session cookie; nil leaves both
	// out (bearer tokens only).
	SignIn *signin.Service
	// ConsoleDir is the built console served for every path outside the API (TALLY_CONSOLE_DIR);
	// empty serves no console.
	ConsoleDir string
	// CORSOrigins are the exact origins whose pages may call the API (TALLY_CORS_ORIGINS).
	CORSOrigins []string
}

// apiPrefixes never fall back to the console's index.html.
var apiPrefixes = []string{"/v1/", "/auth/", "/openapi.", "/healthz"}

func isAPIPath(p string) bool {
	for _, prefix := range apiPrefixes {
		if strings.HasPrefix(p, prefix) || p == strings.TrimSuffix(prefix, "/") {
			return true
		}
	}
	return false
}

type registration struct {
	name     string
	addr     string
	register func(context.Context, *runtime.ServeMux, *grpc.ClientConn) error
}

// New builds the HTTP handler. The returned close function releases the gRPC connections.
func New(ctx context.Context, cfg Config) (http.Handler, func(), error) {
	if cfg.Logger == nil {
		return nil, nil, errors.New("gateway: logger is required")
	}
	restErr := restErrors{limits: cfg.Limits, logger: cfg.Logger}
	mux := runtime.NewServeMux(
		// HTTPBodyMarshaler serves google.api.HttpBody responses (invoice PDFs) as their own
		// content type and everything else as JSON.
		// strictJSON (strict.go) refuses integers written as 1e3 or 1.0 in request bodies.
		runtime.WithMarshalerOption(runtime.MIMEWildcard, &runtime.HTTPBodyMarshaler{Marshaler: strictJSON{&runtime.JSONPb{
			MarshalOptions:   protojson.MarshalOptions{EmitUnpopulated: true},
			UnmarshalOptions: protojson.UnmarshalOptions{DiscardUnknown: false},
		}}}),
		runtime.WithErrorHandler(restErr.handler),
		runtime.WithRoutingErrorHandler(routingErrorHandler),
		runtime.WithForwardResponseOption(refuseOversizedBody),
		runtime.WithForwardResponseOption(documentDisposition),
		// No POST-as-GET with form bodies and no X-HTTP-Method-Override: one route, one method.
		runtime.WithDisablePathLengthFallback(),
		runtime.WithDisableHTTPMethodOverride(),
	)
	conns := map[string]*grpc.ClientConn{}
	closeAll := func() {
		for _, c := range conns {
			_ = c.Close()
		}
	}
	regs := []registration{{name: "ledger", addr: cfg.LedgerAddr, register: ledgerv1.RegisterLedgerServiceHandler}}
	regs = append(regs, extraRegistrations(cfg)...)
	for _, r := range regs {
		if r.addr == "" {
			continue
		}
		conn, err := grpc.NewClient(r.addr, grpc.WithTransportCredentials(insecure.NewCredentials()), server.ClientMessageLimits())
		if err != nil {
			closeAll()
			return nil, nil, fmt.Errorf("dialing %s: %w", r.addr, err)
		}
		conns[r.name] = conn
		if err := r.register(ctx, mux, conn); err != nil {
			closeAll()
			return nil, nil, fmt.Errorf("registering routes for %s: %w", r.addr, err)
		}
	}
	if err := registerExtraRoutes(mux, restErr, conns); err != nil {
		closeAll()
		return nil, nil, err
	}
	root := http.NewServeMux()
	root.HandleFunc("GET /openapi.json", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(openapi.Spec)
	})
	root.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("ok\n"))
	})
	var rest http.Handler = withCleanURL(withETag(mux))
	if cfg.SignIn != nil {
		rest = cfg.SignIn.Authenticate(rest)
		cfg.SignIn.Register(root)
	}
	root.Handle("/v1/", rest)
	fallback := rest
	if cfg.ConsoleDir != "" {
		pages, err := console.New(cfg.ConsoleDir)
		if err != nil {
			closeAll()
			return nil, nil, err
		}
		fallback = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if isAPIPath(r.URL.Path) || (r.Method != http.MethodGet && r.Method != http.MethodHead) {
				rest.ServeHTTP(w, r)
				return
			}
			pages.ServeHTTP(w, r)
		})
	}
	root.Handle("/", fallback)
	return cfg.Limits.Handler(cors.Handler(cfg.CORSOrigins, root)), closeAll, nil
}

// withETag gives the public price list strong ETags and honours If-None-Match, so the pricing
// page and the instance form can cache it.
func withETag(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet || !strings.HasPrefix(r.URL.Path, "/v1/pricing/") {
			next.ServeHTTP(w, r)
			return
		}
		rec := &bufferedResponse{header: http.Header{}, status: http.StatusOK}
		next.ServeHTTP(rec, r)
		for k, v := range rec.header {
			w.Header()[k] = v
		}
		if rec.status == http.StatusOK {
			sum := sha256.Sum256(withoutRequestTime(rec.body))
			etag := `"` + hex.EncodeToString(sum[:16]) + `"`
			w.Header().Set("ETag", etag)
			w.Header().Set("Cache-Control", "public, max-age=60")
			if match := r.Header.Get("If-None-Match"); match != "" && etagMatches(match, etag) {
				w.WriteHeader(http.StatusNotModified)
				return
			}
		}
		w.WriteHeader(rec.status)
		_, _ = w.Write(rec.body)
	})
}

// withoutRequestTime drops the top-level "at" of a price list, which echoes the time asked
// about: two reads of an unchanged list then share an ETag.
func withoutRequestTime(body []byte) []byte {
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(body, &doc); err != nil {
		return body
	}
	delete(doc, "at")
	canonical, err := json.Marshal(doc) // map keys are sorted: deterministic
	if err != nil {
		return body
	}
	return canonical
}

func etagMatches(header, etag string) bool {
	for _, candidate := range strings.Split(header, ",") {
		c := strings.TrimSpace(candidate)
		if c == etag || c == "*" || strings.TrimPrefix(c, "W/") == etag {
			return true
		}
	}
	return false
}

type bufferedResponse struct {
	header http.Header
	status int
	body   []byte
}

func (b *bufferedResponse) Header() http.Header  { return b.header }
func (b *bufferedResponse) WriteHeader(code int) { b.status = code }
func (b *bufferedResponse) Write(p []byte) (int, error) {
	b.body = append(b.body, p...)
	return len(p), nil
}
