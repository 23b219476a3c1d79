package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/tallyhq/tally/pkg/rpcclient"
	"github.com/tallyhq/tally/pkg/server/requestid"
)

// endpoint is one gRPC service tallyctl talks to: its name in stack.json, the flag and the
// variable that set its address (the variable the services themselves dial it by), and the
// address of `make run`.
type endpoint struct {
	name, flag, env, def string
}

var endpoints = []endpoint{
	{"ledger", "ledger-addr", "TALLY_LEDGER_ADDR", "localhost:9091"},
	{"pricing", "pricing-addr", "TALLY_PRICING_ADDR", "localhost:9092"},
	{"payments", "payments-addr", "TALLY_PAYMENTS_ADDR", "localhost:9093"},
	{"instances-metering", "instances-addr", "TALLY_INSTANCES_ADDR", "localhost:9094"},
	{"notifications", "notifications-addr", "TALLY_NOTIFICATIONS_ADDR", "localhost:9095"},
}

// The variables tallyctl reads besides the addresses.
const (
	tokenEnv = "TALLY_TOKEN"
	stackEnv = "TALLY_STACK"
)

// defaultTimeout is the deadline of each call unless --timeout says otherwise.
const defaultTimeout = 10 * time.Second

// cli is one invocation: the global options, the connections it opened and its output.
type cli struct {
	out, errOut io.Writer
	getenv      func(string) string

	output  string
	token   string
	stack   string
	timeout time.Duration
	useTLS  bool
	caFile  string
	addrs   map[string]*string

	conns map[string]*grpc.ClientConn
	// ran is set once a command's own code runs: errors before it are usage errors.
	ran bool
}

func newCLI(out, errOut io.Writer, getenv func(string) string) *cli {
	return &cli{out: out, errOut: errOut, getenv: getenv, addrs: map[string]*string{}, conns: map[string]*grpc.ClientConn{}}
}

func (c *cli) close() {
	for _, conn := range c.conns {
		_ = conn.Close()
	}
}

const rootLong = `tallyctl is the operators' command line for tally: it calls the services' gRPC API
directly, with an ops token, and prints a table (or the API's JSON with -o json).

Token: --token, else $TALLY_TOKEN, else (with --stack) the ops token tally-dev wrote beside
stack.json. Mint one for the local stack with: export TALLY_TOKEN=$(make -s token ROLE=ops)

Addresses: each --<service>-addr flag, else the stack file of --stack / $TALLY_STACK (tally-dev
writes .data/stack.json), else the variable the services use (TALLY_LEDGER_ADDR, ...), else the
ports of make run (ledger :9091, pricing :9092, payments :9093, instances-metering :9094,
notifications :9095).

Amounts are exact decimals of the currency ("25", "-0.50", "0.000001"), never rounded; tables
show them as the console does ($1,234.50). Every write takes an idempotency key: pass
--idempotency-key, or tallyctl makes one and prints it on stderr before sending, so a retry with
the same key is the same request (never a second grant).

Exit status: 0 done, 1 the service refused or failed the request, 2 usage error (nothing sent),
3 a service unreachable or too slow (--timeout), 4 the token was refused.`

func (c *cli) rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "tallyctl",
		Short: "Operate tally: balances, grants, adjustments, prices, refunds, reviews, emails, rentals",
		Long:  rootLong,
		Example: `  export TALLY_TOKEN=$(make -s token ROLE=ops)
  tallyctl balance acme
  tallyctl grant acme --amount 25 --reason "welcome credits"
  tallyctl transactions acme --kind credit -o json`,
		SilenceErrors: true,
		SilenceUsage:  true,
	}
	root.SetOut(c.out)
	root.SetErr(c.errOut)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	f := root.PersistentFlags()
	f.StringVarP(&c.output, "output", "o", "table", "output format: table or json (the API's JSON, as protojson writes it)")
	f.StringVar(&c.token, "token", "", "bearer token (default $"+tokenEnv+")")
	f.StringVar(&c.stack, "stack", "", "a running stack's stack.json (tally-dev writes .data/stack.json); default $"+stackEnv)
	f.DurationVar(&c.timeout, "timeout", defaultTimeout, "deadline of each call")
	f.BoolVar(&c.useTLS, "tls", false, "use TLS (for a TLS-terminating proxy in front of the services, which serve plaintext)")
	f.StringVar(&c.caFile, "ca-file", "", "PEM file of the CA that signed the proxy's certificate (with --tls; default the system roots)")
	for _, e := range endpoints {
		c.addrs[e.name] = f.String(e.flag, "", fmt.Sprintf("%s gRPC address (default: the stack file, $%s, or %s)", e.name, e.env, e.def))
	}
	root.AddCommand(c.balanceCommand(), c.transactionsCommand(), c.grantCommand(), c.adjustCommand(),
		c.pricesCommand(), c.paymentsCommand(), c.refundCommand(), c.reviewsCommand(), c.deliveriesCommand(),
		c.rentalsCommand(), c.moveOrgCommand())
	return root
}

// runE wraps a command's code: it checks the global options first, and marks that the command
// line was accepted.
func (c *cli) runE(fn func(cmd *cobra.Command, args []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		c.ran = true
		if c.output != "table" && c.output != "json" {
			return usagef("-o %q: want table or json", c.output)
		}
		if c.timeout <= 0 {
			return usagef("--timeout %s: want a positive duration", c.timeout)
		}
		return fn(cmd, args)
	}
}

// stackFile is the part of tally-dev's stack.json tallyctl reads.
type stackFile struct {
	GRPC map[string]string `json:"grpc"`
}

func (c *cli) stackPath() string {
	if c.stack != "" {
		return c.stack
	}
	return c.getenv(stackEnv)
}

// address resolves where a service answers: its flag, the stack file, its variable, the default.
func (c *cli) address(e endpoint) (string, error) {
	if a := *c.addrs[e.name]; a != "" {
		return a, nil
	}
	if path := c.stackPath(); path != "" {
		raw, err := os.ReadFile(path)
		if err != nil {
			return "", usagef("reading the stack file: %w (is the stack running? tally-dev writes it once everything answers)", err)
		}
		var sf stackFile
		if err := json.Unmarshal(raw, &sf); err != nil {
			return "", usagef("reading the stack file %s: %w", path, err)
		}
		if a := sf.GRPC[e.name]; a != "" {
			return a, nil
		}
		return "", usagef("the stack file %s names no %s address (is %s built?)", path, e.name, e.name)
	}
	if a := c.getenv(e.env); a != "" {
		return a, nil
	}
	return e.def, nil
}

// bearer returns the token to send: --token, $TALLY_TOKEN, or the ops token tally-dev writes
// beside stack.json ("dev-token"); empty when there is none (public methods need none).
func (c *cli) bearer() (string, error) {
	if c.token != "" {
		return c.token, nil
	}
	if t := c.getenv(tokenEnv); t != "" {
		return t, nil
	}
	if path := c.stackPath(); path != "" {
		raw, err := os.ReadFile(filepath.Join(filepath.Dir(path), "dev-token"))
		if err == nil {
			return strings.TrimSpace(string(raw)), nil
		}
		if !errors.Is(err, os.ErrNotExist) {
			return "", fmt.Errorf("reading the stack's dev-token: %w", err)
		}
	}
	return "", nil
}

// conn returns the connection to a service, dialing it on first use.
func (c *cli) conn(name string) (*grpc.ClientConn, error) {
	if conn, ok := c.conns[name]; ok {
		return conn, nil
	}
	var e endpoint
	for _, x := range endpoints {
		if x.name == name {
			e = x
		}
	}
	addr, err := c.address(e)
	if err != nil {
		return nil, err
	}
	token, err := c.bearer()
	if err != nil {
		return nil, err
	}
	opts := []grpc.DialOption{grpc.WithChainUnaryInterceptor(describeErrors(name, token == ""))}
	if c.useTLS {
		creds, err := c.tlsCredentials()
		if err != nil {
			return nil, err
		}
		opts = append(opts, grpc.WithTransportCredentials(creds))
	} else if c.caFile != "" {
		return nil, usagef("--ca-file needs --tls")
	}
	conn, err := rpcclient.Dial(addr, token, opts...)
	if err != nil {
		return nil, usageError{err}
	}
	c.conns[name] = conn
	return conn, nil
}

func (c *cli) tlsCredentials() (credentials.TransportCredentials, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if c.caFile != "" {
		pem, err := os.ReadFile(c.caFile)
		if err != nil {
			return nil, usagef("--ca-file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, usagef("--ca-file %s: no PEM certificate in it", c.caFile)
		}
		cfg.RootCAs = pool
	}
	return credentials.NewTLS(cfg), nil
}

// callCtx returns the context of one call: the command's, with the --timeout deadline.
func (c *cli) callCtx(cmd *cobra.Command) (context.Context, context.CancelFunc) {
	return context.WithTimeout(cmd.Context(), c.timeout)
}

// call makes one call with the --timeout deadline and prints its reply, as JSON or as the tables
// of show. A list's next page and a write's replay are said on stderr.
func call[C any, R proto.Message](c *cli, cmd *cobra.Command, client func() (C, error),
	rpc func(context.Context, C) (R, error), show func(R) []*table) error {
	cl, err := client()
	if err != nil {
		return err
	}
	ctx, cancel := c.callCtx(cmd)
	defer cancel()
	resp, err := rpc(ctx, cl)
	if err != nil {
		return err
	}
	if r, ok := any(resp).(interface{ GetReplayed() bool }); ok && r.GetReplayed() {
		c.note("replayed: this idempotency key was used before; nothing changed, the original result is shown")
	}
	if err := c.emit(resp, func() []*table { return show(resp) }); err != nil {
		return err
	}
	if p, ok := any(resp).(interface{ GetNextPageToken() string }); ok {
		c.nextPage(p.GetNextPageToken())
	}
	return nil
}

func (c *cli) note(msg string) {
	_, _ = io.WriteString(c.errOut, msg+"\n")
}

// callError is a call the service (or the transport) answered with an error status.
type callError struct {
	service, method string
	status          *status.Status
	requestID       string
	noToken         bool
}

func (e *callError) Error() string {
	msg := fmt.Sprintf("%s %s: %s: %s", e.service, e.method, e.status.Code(), e.status.Message())
	if e.requestID != "" {
		msg += " (request " + e.requestID + ")"
	}
	if e.noToken && e.status.Code() == codes.Unauthenticated {
		msg += "\nno token was sent: set $" + tokenEnv + " or --token (locally: export " + tokenEnv + "=$(make -s token ROLE=ops))"
	}
	return msg
}

// describeErrors turns every failed call into a callError naming the service, the method, the
// status and the request id the server answered with (its logs carry the same id).
func describeErrors(service string, noToken bool) grpc.UnaryClientInterceptor {
	return func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		var header, trailer metadata.MD
		err := invoker(ctx, method, req, reply, cc, append(opts, grpc.Header(&header), grpc.Trailer(&trailer))...)
		if err == nil {
			return nil
		}
		id := first(header.Get(requestid.Header), trailer.Get(requestid.Header))
		return &callError{service: service, method: method[strings.LastIndexByte(method, '/')+1:], status: status.Convert(err), requestID: id, noToken: noToken}
	}
}

func first(lists ...[]string) string {
	for _, l := range lists {
		if len(l) > 0 {
			return l[0]
		}
	}
	return ""
}
