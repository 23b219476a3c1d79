package restfuzz

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/tallyhq/tally/pkg/textcheck"
)

// Identity is a caller: a name for the report and its bearer token ("" for anonymous).
type Identity struct {
	Name  string
	Token string
}

// Config configures a run.
type Config struct {
	// BaseURL is the gateway, e.g. http://127.0.0.1:8080.
	BaseURL string
	// Client sends the requests; default: a client with a 30s timeout.
	Client *http.Client
	Spec   *Spec
	// Identities are cycled over the requests; at least one.
	Identities []Identity
	Hints      Hints
	// Seed makes a run reproducible: request i is built from (Seed, i) alone.
	Seed uint64
	// Requests is how many requests to send (default 1000); Duration, when set, ends the run
	// earlier.
	Requests int
	Duration time.Duration
	// Concurrency is how many requests are in flight (default 4).
	Concurrency int
	// Headers adds headers to a request of op carrying body (e.g. a webhook signature); optional.
	Headers func(op Operation, body []byte, rnd *rand.Rand) http.Header
}

// Result is one request and what came back.
type Result struct {
	Operation string
	Identity  string
	Mutations []string
	Method    string
	// Target is the escaped path and query, truncated.
	Target string
	Status int
	// Body is the start of the answer.
	Body string
	// Problem says what is wrong with the answer; empty when nothing is.
	Problem string
}

func (r Result) String() string {
	return fmt.Sprintf("%s as %s %v: %s %s → %d %s (%s)", r.Operation, r.Identity, r.Mutations, r.Method, r.Target, r.Status, r.Body, r.Problem)
}

// Report sums up a run.
type Report struct {
	Seed     uint64
	Requests int
	Elapsed  time.Duration
	// ByOperation counts the answers by status, per operation.
	ByOperation map[string]map[int]int
	Statuses    map[int]int
	// Problems are the requests whose answer is wrong, in request order.
	Problems []Result
}

// leaks are fragments of library and transport text that an error message must not carry.
var leaks = []string{"proto:", "(line ", "/tally.", "Service/", "grpc:", "strconv", "Go value", "json:", "reflect.", "dial tcp", "127.0.0.1", "panic", "runtime error", "goroutine ", "pq:", "SQLSTATE", "pgx", "bigint"}

// maxMessage bounds an error message, maxErrorBody an error body: longer ones echo the caller's
// input.
const (
	maxMessage   = 200
	maxErrorBody = 4 << 10
)

// Run sends the requests and returns the report; it fails only when it cannot run at all.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if cfg.Spec == nil || cfg.BaseURL == "" || len(cfg.Identities) == 0 {
		return nil, errors.New("restfuzz: spec, base URL and identities are required")
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{Timeout: 30 * time.Second}
	}
	if cfg.Requests <= 0 {
		cfg.Requests = 1000
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 4
	}
	if cfg.Duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, cfg.Duration)
		defer cancel()
	}
	rep := &Report{Seed: cfg.Seed, ByOperation: map[string]map[int]int{}, Statuses: map[int]int{}}
	results := make([]*Result, cfg.Requests)
	next := make(chan int)
	var wg sync.WaitGroup
	start := time.Now()
	for range cfg.Concurrency {
		wg.Go(func() {
			for i := range next {
				results[i] = send(ctx, cfg, i, start)
			}
		})
	}
feed:
	for i := range cfg.Requests {
		select {
		case next <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	rep.Elapsed = time.Since(start)
	for _, r := range results {
		if r == nil || (r.Status == 0 && ctx.Err() != nil) {
			continue // not sent, or cut by the end of the run
		}
		rep.Requests++
		if rep.ByOperation[r.Operation] == nil {
			rep.ByOperation[r.Operation] = map[int]int{}
		}
		rep.ByOperation[r.Operation][r.Status]++
		rep.Statuses[r.Status]++
		if r.Problem != "" {
			rep.Problems = append(rep.Problems, *r)
		}
	}
	return rep, nil
}

// send builds, sends and judges request i of the run that started at start.
func send(ctx context.Context, cfg Config, i int, start time.Time) *Result {
	ops := cfg.Spec.Operations
	op := ops[i%len(ops)]
	id := cfg.Identities[(i/len(ops))%len(cfg.Identities)]
	g := newGenerator(cfg.Spec, cfg.Hints, cfg.Seed, i, start)
	r := g.build(op)
	if g.rnd.IntN(8) != 0 {
		g.mutate(r, 1+g.rnd.IntN(2))
	}
	res := &Result{Operation: op.Name(), Identity: id.Name, Mutations: r.mutations, Method: r.method, Target: textcheck.Abbreviate(r.target(), 160)}
	body, err := r.encodeBody()
	if err != nil {
		res.Problem = "cannot build: " + err.Error()
		return res
	}
	req, err := http.NewRequestWithContext(ctx, r.method, strings.TrimRight(cfg.BaseURL, "/")+r.target(), bytes.NewReader(body))
	if err != nil {
		res.Problem = "cannot build: " + err.Error()
		return res
	}
	if body == nil {
		req.Body = http.NoBody
	} else if r.contentType != "" {
		req.Header.Set("Content-Type", r.contentType)
	}
	if id.Token != "" {
		req.Header.Set("Authorization", "Bearer "+id.Token)
	}
	if cfg.Headers != nil {
		for k, vs := range cfg.Headers(op, body, g.rnd) {
			req.Header[k] = vs
		}
	}
	resp, err := cfg.Client.Do(req)
	if err != nil {
		if cutLargeBody := len(body) > 1<<20 && isConnectionCut(err); ctx.Err() == nil && !cutLargeBody {
			res.Problem = "transport: " + textcheck.Abbreviate(err.Error(), 200)
		}
		return res
	}
	defer func() { _ = resp.Body.Close() }()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	res.Status = resp.StatusCode
	res.Body = textcheck.Abbreviate(string(raw), 300)
	if err != nil && ctx.Err() == nil {
		res.Problem = "reading the answer: " + textcheck.Abbreviate(err.Error(), 200)
		return res
	}
	res.Problem = judge(resp, raw)
	return res
}

// isConnectionCut reports a connection the server closed while a client still wrote an
// oversized body: the server answered 413 and stopped reading, as it should.
func isConnectionCut(err error) bool {
	s := err.Error()
	return strings.Contains(s, "broken pipe") || strings.Contains(s, "connection reset") || strings.Contains(s, "EOF")
}

// judge says what is wrong with an answer, or "".
func judge(resp *http.Response, body []byte) string {
	if resp.StatusCode >= 500 {
		return "5xx"
	}
	if resp.StatusCode < 400 {
		return ""
	}
	if resp.StatusCode == http.StatusRequestHeaderFieldsTooLarge {
		// net/http itself refuses headers over MaxHeaderBytes before any handler runs, with a
		// plain-text body of its own: refused, not answered by tally.
		return ""
	}
	if len(body) > maxErrorBody {
		return "error body too long (echoes input)"
	}
	var e map[string]json.RawMessage
	if err := json.Unmarshal(body, &e); err != nil {
		return "error body is not JSON"
	}
	var code, msg string
	var details []map[string]json.RawMessage
	if len(e) != 3 || json.Unmarshal(e["code"], &code) != nil || json.Unmarshal(e["message"], &msg) != nil ||
		json.Unmarshal(e["details"], &details) != nil || details == nil {
		return `error body is not {"code","message","details"}`
	}
	if !codeName.MatchString(code) {
		return "error code is not a google.rpc.Code name"
	}
	texts := []string{msg}
	for _, d := range details {
		var typ string
		if json.Unmarshal(d["@type"], &typ) != nil || !strings.HasPrefix(typ, "type.googleapis.com/google.rpc.") {
			return "error detail is not a google.rpc detail"
		}
		texts = append(texts, string(d["fieldViolations"]))
	}
	for _, text := range texts {
		for _, l := range leaks {
			if strings.Contains(text, l) {
				return "error message leaks " + strings.TrimSpace(l)
			}
		}
	}
	if len(msg) > maxMessage {
		return "error message too long (echoes input)"
	}
	return ""
}

// codeName is what a REST error's code looks like: a google.rpc.Code name such as INVALID_ARGUMENT.
var codeName = regexp.MustCompile(`^(CANCELLED|UNKNOWN|INVALID_ARGUMENT|DEADLINE_EXCEEDED|NOT_FOUND|ALREADY_EXISTS|` +
	`PERMISSION_DENIED|RESOURCE_EXHAUSTED|FAILED_PRECONDITION|ABORTED|OUT_OF_RANGE|UNIMPLEMENTED|INTERNAL|UNAVAILABLE|` +
	`DATA_LOSS|UNAUTHENTICATED)$`)

// Summary is a table of the answers per operation and a histogram of the statuses.
func (r *Report) Summary() string {
	var b strings.Builder
	rate := 0.0
	if r.Elapsed > 0 {
		rate = float64(r.Requests) / r.Elapsed.Seconds()
	}
	fmt.Fprintf(&b, "restfuzz: %d requests, seed %d, %s (%.0f/s), %d problems\n", r.Requests, r.Seed, r.Elapsed.Round(time.Millisecond), rate, len(r.Problems))
	statuses := slices.Sorted(maps.Keys(r.Statuses))
	fmt.Fprintf(&b, "%-52s %6s", "operation", "total")
	for _, s := range statuses {
		fmt.Fprintf(&b, " %5d", s)
	}
	b.WriteString("\n")
	for _, op := range slices.Sorted(maps.Keys(r.ByOperation)) {
		counts := r.ByOperation[op]
		total := 0
		for _, n := range counts {
			total += n
		}
		fmt.Fprintf(&b, "%-52s %6d", op, total)
		for _, s := range statuses {
			fmt.Fprintf(&b, " %5d", counts[s])
		}
		b.WriteString("\n")
	}
	fmt.Fprintf(&b, "%-52s %6d", "all", r.Requests)
	for _, s := range statuses {
		fmt.Fprintf(&b, " %5d", r.Statuses[s])
	}
	b.WriteString("\n")
	return b.String()
}
