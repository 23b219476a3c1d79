package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	rpccode "google.golang.org/genproto/googleapis/rpc/code"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/tallyhq/tally/pkg/config"
	"github.com/tallyhq/tally/pkg/server/requestid"
)

// MaxGRPCMessageBytes bounds one gRPC message in either direction, on every server (received and
// sent) and on the gateway's clients. A larger request is refused with ResourceExhausted before
// it is decoded.
const MaxGRPCMessageBytes = 4 << 20

// maxGRPCHeaderListBytes bounds the metadata of one gRPC call (the bearer token among it).
const maxGRPCHeaderListBytes = 64 << 10

// grpcKeepaliveEnforcement refuses clients that ping more often than every 10s (GOAWAY
// "too_many_pings"); pings between calls are allowed, so idle long-lived clients stay connected.
var grpcKeepaliveEnforcement = keepalive.EnforcementPolicy{MinTime: 10 * time.Second, PermitWithoutStream: true}

// grpcKeepaliveParams closes connections idle for 15 minutes and pings a silent client after a
// minute, dropping it when the ping is not answered within 20s. MaxConnectionAge stays unset:
// WatchEvents and WatchCatalog streams live as long as their followers.
var grpcKeepaliveParams = keepalive.ServerParameters{
	MaxConnectionIdle: 15 * time.Minute,
	Time:              time.Minute,
	Timeout:           20 * time.Second,
}

// grpcLimitOptions are the message size, metadata size and keepalive limits of every server.
func grpcLimitOptions() []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.MaxRecvMsgSize(MaxGRPCMessageBytes),
		grpc.MaxSendMsgSize(MaxGRPCMessageBytes),
		grpc.MaxHeaderListSize(maxGRPCHeaderListBytes),
		grpc.KeepaliveEnforcementPolicy(grpcKeepaliveEnforcement),
		grpc.KeepaliveParams(grpcKeepaliveParams),
	}
}

// ClientMessageLimits is the dial option giving a client the servers' message size limits, so a
// call too large for the server fails on the client with ResourceExhausted instead of being sent.
func ClientMessageLimits() grpc.DialOption {
	return grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(MaxGRPCMessageBytes), grpc.MaxCallSendMsgSize(MaxGRPCMessageBytes))
}

// HTTPLimits bound what one HTTP request may cost a server: the size of its body and headers and
// the time it may take to arrive, to be answered and to idle between requests. Zero fields take
// the defaults (DefaultHTTPLimits).
type HTTPLimits struct {
	// MaxBodyBytes bounds a request body (TALLY_HTTP_MAX_BODY, default 1 MiB); beyond it the
	// request is refused with 413 while the body is read, never buffered whole.
	MaxBodyBytes int64
	// MaxHeaderBytes bounds the request line and headers (default 64 KiB).
	MaxHeaderBytes int
	// ReadHeaderTimeout bounds receiving the headers (TALLY_HTTP_READ_HEADER_TIMEOUT, default 5s).
	ReadHeaderTimeout time.Duration
	// ReadTimeout bounds receiving the whole request, body included (TALLY_HTTP_READ_TIMEOUT,
	// default 30s): a client trickling its body is cut off.
	ReadTimeout time.Duration
	// WriteTimeout bounds answering a request (TALLY_HTTP_WRITE_TIMEOUT, default 30s); it is also
	// the deadline of the handler's context, so the calls made for a request stop with it.
	WriteTimeout time.Duration
	// IdleTimeout bounds a keep-alive connection between requests (TALLY_HTTP_IDLE_TIMEOUT,
	// default 2m).
	IdleTimeout time.Duration
}

// The default HTTP limits.
const (
	DefaultMaxBodyBytes      = 1 << 20
	DefaultMaxHeaderBytes    = 64 << 10
	DefaultReadHeaderTimeout = 5 * time.Second
	DefaultReadTimeout       = 30 * time.Second
	DefaultWriteTimeout      = 30 * time.Second
	DefaultIdleTimeout       = 2 * time.Minute
)

// maxBodyCeiling keeps a request body, once forwarded as a gRPC message, under the gRPC limit.
const maxBodyCeiling = MaxGRPCMessageBytes - 64<<10

// DefaultHTTPLimits returns the documented defaults.
func DefaultHTTPLimits() HTTPLimits {
	return HTTPLimits{
		MaxBodyBytes:      DefaultMaxBodyBytes,
		MaxHeaderBytes:    DefaultMaxHeaderBytes,
		ReadHeaderTimeout: DefaultReadHeaderTimeout,
		ReadTimeout:       DefaultReadTimeout,
		WriteTimeout:      DefaultWriteTimeout,
		IdleTimeout:       DefaultIdleTimeout,
	}
}

// LoadHTTPLimits reads TALLY_HTTP_MAX_BODY (bytes, or with a KiB/MiB suffix) and the
// TALLY_HTTP_*_TIMEOUT durations. Like every reader of e, a malformed duration is recorded in e
// (see config.Env.Err); the error returned is about the values themselves.
func LoadHTTPLimits(e *config.Env) (HTTPLimits, error) {
	d := DefaultHTTPLimits()
	l := HTTPLimits{
		MaxHeaderBytes:    d.MaxHeaderBytes,
		ReadHeaderTimeout: e.Duration("TALLY_HTTP_READ_HEADER_TIMEOUT", d.ReadHeaderTimeout),
		ReadTimeout:       e.Duration("TALLY_HTTP_READ_TIMEOUT", d.ReadTimeout),
		WriteTimeout:      e.Duration("TALLY_HTTP_WRITE_TIMEOUT", d.WriteTimeout),
		IdleTimeout:       e.Duration("TALLY_HTTP_IDLE_TIMEOUT", d.IdleTimeout),
	}
	var errs []error
	size, err := ParseByteSize(e.String("TALLY_HTTP_MAX_BODY", "1MiB"))
	switch {
	case err != nil:
		errs = append(errs, fmt.Errorf("TALLY_HTTP_MAX_BODY: %w", err))
	case size <= 0 || size > maxBodyCeiling:
		errs = append(errs, fmt.Errorf("TALLY_HTTP_MAX_BODY must be between 1 byte and %s (the gRPC message limit less headroom)", FormatByteSize(maxBodyCeiling)))
	default:
		l.MaxBodyBytes = size
	}
	if l.ReadHeaderTimeout <= 0 || l.ReadTimeout <= 0 || l.WriteTimeout <= 0 || l.IdleTimeout <= 0 {
		errs = append(errs, errors.New("TALLY_HTTP_READ_HEADER_TIMEOUT, _READ_TIMEOUT, _WRITE_TIMEOUT and _IDLE_TIMEOUT must be positive"))
	}
	if err := errors.Join(errs...); err != nil {
		return HTTPLimits{}, err
	}
	return l, nil
}

// withDefaults fills the zero fields with the defaults.
func (l HTTPLimits) withDefaults() HTTPLimits {
	d := DefaultHTTPLimits()
	if l.MaxBodyBytes <= 0 {
		l.MaxBodyBytes = d.MaxBodyBytes
	}
	if l.MaxHeaderBytes <= 0 {
		l.MaxHeaderBytes = d.MaxHeaderBytes
	}
	if l.ReadHeaderTimeout <= 0 {
		l.ReadHeaderTimeout = d.ReadHeaderTimeout
	}
	if l.ReadTimeout <= 0 {
		l.ReadTimeout = d.ReadTimeout
	}
	if l.WriteTimeout <= 0 {
		l.WriteTimeout = d.WriteTimeout
	}
	if l.IdleTimeout <= 0 {
		l.IdleTimeout = d.IdleTimeout
	}
	return l
}

// Server returns an http.Server for addr with the limits' timeouts and header bound, serving
// h behind Handler, and logging its own errors (panics in handlers included) to logger.
func (l HTTPLimits) Server(addr string, h http.Handler, logger *slog.Logger) *http.Server {
	l = l.withDefaults()
	return &http.Server{
		Addr:              addr,
		Handler:           l.Handler(h),
		ReadHeaderTimeout: l.ReadHeaderTimeout,
		ReadTimeout:       l.ReadTimeout,
		WriteTimeout:      l.WriteTimeout,
		IdleTimeout:       l.IdleTimeout,
		MaxHeaderBytes:    l.MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
}

// Handler gives every request to next a request id (the caller's X-Request-Id when it is 1..64
// of [A-Za-z0-9._-], else a new one: in the request's header and context and in the response)
// and bounds its body: a declared Content-Length over the limit is refused with 413 before
// anything is read; a body that turns out longer stops at the limit with an error, after which
// BodyError reports ErrBodyTooLarge. The request's context gets the write timeout as its
// deadline. Wrapping twice is harmless: the outer wrapper does all of it, the inner one nothing
// (so a 413 of the outer one carries the request id as well).
func (l HTTPLimits) Handler(next http.Handler) http.Handler {
	l = l.withDefaults()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, ok := r.Context().Value(bodyStateKey{}).(*bodyState); ok {
			next.ServeHTTP(w, r)
			return
		}
		id := httpRequestID(r)
		r.Header.Set(HTTPRequestIDHeader, id)
		w.Header().Set(HTTPRequestIDHeader, id)
		ctx := requestid.With(r.Context(), id)
		if r.ContentLength > l.MaxBodyBytes {
			// The body is never read: the connection cannot be reused.
			w.Header().Set("Connection", "close")
			WriteHTTPError(w, http.StatusRequestEntityTooLarge, codes.ResourceExhausted, l.BodyTooLargeMessage())
			return
		}
		st := &bodyState{}
		ctx, cancel := context.WithTimeout(context.WithValue(ctx, bodyStateKey{}, st), l.WriteTimeout)
		defer cancel()
		r = r.WithContext(ctx)
		r.Body = &limitedBody{rc: http.MaxBytesReader(w, r.Body, l.MaxBodyBytes), st: st}
		next.ServeHTTP(w, r)
	})
}

// HTTPRequestIDHeader carries the request id over HTTP (RequestIDHeader over gRPC).
const HTTPRequestIDHeader = "X-Request-Id"

// httpRequestID is the request id of r: its one X-Request-Id when acceptable, else a new one.
func httpRequestID(r *http.Request) string {
	if v := r.Header.Values(HTTPRequestIDHeader); len(v) == 1 && requestid.Valid(v[0]) {
		return v[0]
	}
	return requestid.New()
}

// BodyTooLargeMessage is the error message of a refused body; it names the limit and its setting.
func (l HTTPLimits) BodyTooLargeMessage() string {
	return fmt.Sprintf("request body exceeds the limit of %s (TALLY_HTTP_MAX_BODY)", FormatByteSize(l.withDefaults().MaxBodyBytes))
}

// ErrBodyTooLarge and ErrBodyTimeout are what BodyError reports about a request's body.
var (
	ErrBodyTooLarge = errors.New("request body too large")
	ErrBodyTimeout  = errors.New("request body not received in time")
)

// BodyError reports why reading the body of the request with ctx failed, when it failed because
// of a limit of Handler: ErrBodyTooLarge or ErrBodyTimeout; nil otherwise.
func BodyError(ctx context.Context) error {
	st, ok := ctx.Value(bodyStateKey{}).(*bodyState)
	if !ok {
		return nil
	}
	switch st.failure.Load() {
	case bodyTooLarge:
		return ErrBodyTooLarge
	case bodyTimedOut:
		return ErrBodyTimeout
	}
	return nil
}

type bodyStateKey struct{}

const (
	bodyOK int32 = iota
	bodyTooLarge
	bodyTimedOut
)

// bodyState records how reading a request body failed.
type bodyState struct{ failure atomic.Int32 }

// limitedBody is a request body behind http.MaxBytesReader that records a limit it ran into.
type limitedBody struct {
	rc io.ReadCloser
	st *bodyState
}

func (b *limitedBody) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	if err != nil && !errors.Is(err, io.EOF) {
		var tooLarge *http.MaxBytesError
		var netErr net.Error
		switch {
		case errors.As(err, &tooLarge):
			b.st.failure.CompareAndSwap(bodyOK, bodyTooLarge)
		case errors.Is(err, os.ErrDeadlineExceeded), errors.As(err, &netErr) && netErr.Timeout():
			b.st.failure.CompareAndSwap(bodyOK, bodyTimedOut)
		}
	}
	return n, err
}

func (b *limitedBody) Close() error { return b.rc.Close() }

// HTTPErrorBody is the JSON body of every REST error: the name of the gRPC code
// (google.rpc.Code: "INVALID_ARGUMENT"), a message and the status details in their JSON form
// (google.protobuf.Any with "@type": google.rpc.BadRequest field violations, RetryInfo), never
// null.
type HTTPErrorBody struct {
	Code    string            `json:"code"`
	Message string            `json:"message"`
	Details []json.RawMessage `json:"details"`
}

// CodeName is the google.rpc.Code name of c: "INVALID_ARGUMENT" for codes.InvalidArgument.
func CodeName(c codes.Code) string { return rpccode.Code(c).String() } //nolint:gosec // gRPC codes are small

// WriteHTTPError writes {"code":<name of code>,"message":msg,"details":[...]} with the HTTP status.
// A detail that does not marshal (its type is not linked in) is left out.
func WriteHTTPError(w http.ResponseWriter, httpStatus int, code codes.Code, msg string, details ...*anypb.Any) {
	body := HTTPErrorBody{Code: CodeName(code), Message: msg, Details: []json.RawMessage{}}
	for _, d := range details {
		if b, err := protojson.Marshal(d); err == nil {
			body.Details = append(body.Details, b)
		}
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(httpStatus)
	_ = json.NewEncoder(w).Encode(body)
}

// ParseByteSize reads a size in bytes: "1048576", "1048576 bytes", "512KiB" or "1MiB".
func ParseByteSize(s string) (int64, error) {
	s = strings.TrimSpace(s)
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"MiB", 1 << 20}, {"KiB", 1 << 10}, {"bytes", 1}, {"B", 1}} {
		if rest, ok := strings.CutSuffix(s, u.suffix); ok {
			s, mult = strings.TrimSpace(rest), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 || n > (1<<40)/mult {
		return 0, fmt.Errorf("%.32q is not a size (bytes, or with a KiB or MiB suffix)", s)
	}
	return n * mult, nil
}

// FormatByteSize writes n as ParseByteSize reads it, in MiB or KiB when it is a whole number of them.
func FormatByteSize(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return strconv.FormatInt(n>>20, 10) + " MiB"
	case n >= 1<<10 && n%(1<<10) == 0:
		return strconv.FormatInt(n>>10, 10) + " KiB"
	}
	return strconv.FormatInt(n, 10) + " bytes"
}
