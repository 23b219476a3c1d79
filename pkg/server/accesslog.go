package server

import (
	"context"
	"log/slog"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/tallyhq/tally/pkg/auth"
)

// AccessLogMessage is the message of the one access-log line of every gRPC call.
const AccessLogMessage = "grpc request"

// Caller kinds of the access logs (CallerKind).
const (
	CallerAnonymous = "anonymous"
	CallerMember    = "member"
	CallerAdmin     = "admin"
	CallerOps       = "ops"
	CallerService   = "service"
	// CallerOther is a verified token with none of the platform's roles.
	CallerOther = "other"
)

// CallerHeader is the response header metadata in which a service answers the kind of caller
// (CallerKind) the call's token verified as; absent when no token was verified. The gateway's
// access log names it (a kind the service verified, not the token's unverified claims) and
// answers no such header over HTTP.
const CallerHeader = "x-tally-caller"

// CallerRequestHeader is the request metadata with which a caller (the gateway) asks for the
// CallerHeader answer. Other callers (model backends on the per-call path) do not ask, and pay
// nothing for it.
const CallerRequestHeader = "x-tally-want-caller"

// callerHeaders are the CallerHeader metadata of each caller kind, read-only: built once rather
// than on every call.
var callerHeaders = func() map[string]metadata.MD {
	m := map[string]metadata.MD{}
	for _, k := range []string{CallerMember, CallerAdmin, CallerOps, CallerService, CallerOther} {
		m[k] = metadata.MD{CallerHeader: []string{k}}
	}
	return m
}()

// CallerKind names the kind of caller c is, for logs: service, ops, admin, member or other.
// It never includes the subject, organization or token.
func CallerKind(c auth.Claims) string {
	switch {
	case c.ServiceName() != "":
		return CallerService
	case c.Has(auth.RoleOps):
		return CallerOps
	case c.Has(auth.RoleAdmin):
		return CallerAdmin
	case c.Has(auth.RoleMember):
		return CallerMember
	}
	return CallerOther
}

// accessRecord collects, during a call, what its access-log line says beyond the method and
// the outcome: the kind of caller its token verified as (anonymous until then).
type accessRecord struct {
	caller string
}

type accessRecordKey struct{}

// DefaultAccessLogSlow is AccessLogSampling.Slow when unset.
const DefaultAccessLogSlow = 100 * time.Millisecond

// AccessLogSampling thins the access log of a service's hottest methods, where one line per call
// is a measurable share of the call's own CPU. Of their calls that end OK within Slow, the
// first and then one in Every is logged, with the attribute sample_every=Every (the line stands
// for Every such calls); each failed or slow call is logged, and so is every call of the other
// methods. The zero value logs every call.
type AccessLogSampling struct {
	// Methods are the full method names sampled (ledgerv1.LedgerService_Debit_FullMethodName).
	Methods []string
	// Every is how many fast successful calls of a method one line stands for; 0 and 1 log each.
	Every uint64
	// Slow is the duration from which a call is always logged (default DefaultAccessLogSlow).
	Slow time.Duration
}

// accessSampler decides which calls of the sampled methods the access log writes.
type accessSampler struct {
	every uint64
	slow  time.Duration
	// calls counts the fast successful calls of each sampled method; read-only map.
	calls map[string]*atomic.Uint64
}

func newAccessSampler(c AccessLogSampling) *accessSampler {
	if c.Every <= 1 || len(c.Methods) == 0 {
		return nil
	}
	if c.Slow <= 0 {
		c.Slow = DefaultAccessLogSlow
	}
	s := &accessSampler{every: c.Every, slow: c.Slow, calls: make(map[string]*atomic.Uint64, len(c.Methods))}
	for _, m := range c.Methods {
		s.calls[m] = new(atomic.Uint64)
	}
	return s
}

// sample says whether the call of method that ended with code after took is logged, and the
// sample_every its line carries (0: none, the line stands for this call alone).
func (s *accessSampler) sample(method string, code codes.Code, took time.Duration) (logged bool, every uint64) {
	if s == nil || code != codes.OK || took >= s.slow {
		return true, 0
	}
	n, ok := s.calls[method]
	if !ok {
		return true, 0
	}
	return (n.Add(1)-1)%s.every == 0, s.every
}

// accessLog writes one line per call, after it ends: method, code, duration, caller kind and
// request id (and, through the logger's handler, the trace id). Health checks and reflection
// are logged at Debug; every other call at Info. sampler, when set, thins the hot methods' lines.
type accessLog struct {
	logger  *slog.Logger
	sampler *accessSampler
}

func (a accessLog) unary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	start := time.Now()
	rec := &accessRecord{caller: CallerAnonymous}
	ctx = context.WithValue(ctx, accessRecordKey{}, rec)
	resp, err := handler(ctx, req)
	a.log(ctx, info.FullMethod, start, err, rec)
	return resp, err
}

func (a accessLog) stream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	start := time.Now()
	rec := &accessRecord{caller: CallerAnonymous}
	ctx := context.WithValue(ss.Context(), accessRecordKey{}, rec)
	err := handler(srv, &contextStream{ServerStream: ss, ctx: ctx})
	a.log(ctx, info.FullMethod, start, err, rec)
	return err
}

func (a accessLog) log(ctx context.Context, method string, start time.Time, err error, rec *accessRecord) {
	level := slog.LevelInfo
	if auth.IsOpsMethod(method) {
		level = slog.LevelDebug
	}
	if !a.logger.Enabled(ctx, level) {
		return
	}
	code, took := status.Code(err), time.Since(start)
	logged, every := a.sampler.sample(method, code, took)
	if !logged {
		return
	}
	attrs := [6]slog.Attr{
		slog.String("method", method),
		slog.String("code", code.String()),
		slog.Duration("duration", took),
		slog.String("caller", rec.caller),
		slog.String("request_id", RequestID(ctx)),
	}
	n := 5
	if every > 0 {
		attrs[n] = slog.Uint64("sample_every", every)
		n++
	}
	a.logger.LogAttrs(ctx, level, AccessLogMessage, attrs[:n]...)
}

// recordingVerifier tells the access log of the call, and the caller in the CallerHeader
// response header, the kind of caller each token it verifies belongs to, also when the policy
// then refuses the call.
type recordingVerifier struct {
	auth.Verifier
}

// Verify implements auth.Verifier.
func (v recordingVerifier) Verify(ctx context.Context, token string) (auth.Claims, error) {
	c, err := v.Verifier.Verify(ctx, token)
	if err == nil {
		kind := CallerKind(c)
		if rec, ok := ctx.Value(accessRecordKey{}).(*accessRecord); ok {
			rec.caller = kind
		}
		// One header per call that asks for it, sent with the answer; fails only once headers
		// are sent. grpc copies it (metadata.Join), so the shared one of each kind serves every call.
		if len(metadata.ValueFromIncomingContext(ctx, CallerRequestHeader)) > 0 {
			_ = grpc.SetHeader(ctx, callerHeaders[kind])
		}
	}
	return c, err
}
