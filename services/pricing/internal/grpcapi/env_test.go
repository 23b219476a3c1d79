package grpcapi_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/sync/errgroup"

	"github.com/tallyhq/tally/pkg/auth"
	pricingv1 "github.com/tallyhq/tally/pkg/gen/tally/pricing/v1"
	"github.com/tallyhq/tally/pkg/money"
	"github.com/tallyhq/tally/pkg/pg"
	"github.com/tallyhq/tally/pkg/rpcclient"
	"github.com/tallyhq/tally/pkg/server"
	"github.com/tallyhq/tally/pkg/testenv"
	"github.com/tallyhq/tally/services/pricing/internal/app"
	"github.com/tallyhq/tally/services/pricing/internal/grpcapi"
	"github.com/tallyhq/tally/services/pricing/internal/store"
	"github.com/tallyhq/tally/services/pricing/migrations"
	"github.com/tallyhq/tally/services/pricing/seed"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

// secret signs the tokens of the tests.
const secret = "pricing-test-secret-0123456789abcdef"

// clock is a settable clock shared by the replicas of a test.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: time.Now().UTC().Truncate(time.Microsecond)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// replica is one running pricing server.
type replica struct {
	app  *app.App
	addr string
	pool interface{ Close() }
}

type replicaOptions struct {
	heartbeat time.Duration
	seedData  []byte
	// maxRequestAmount is TALLY_MAX_REQUEST_AMOUNT; the zero Limit is the default.
	maxRequestAmount money.Limit
}

// startReplica runs a pricing server on dbURL the way cmd/pricing does, on 127.0.0.1:0.
func startReplica(t *testing.T, dbURL string, clk *clock, opts replicaOptions) *replica {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	pool, err := pg.Connect(ctx, dbURL, "pricing", 4)
	require.NoError(t, err)
	require.NoError(t, pg.Migrate(ctx, pool, "pricing", migrations.FS))
	st, err := store.New(pool, clk.Now)
	require.NoError(t, err)
	a, err := app.New(app.Config{Store: st, Logger: logger, Now: clk.Now, MaxRequestAmount: opts.maxRequestAmount})
	require.NoError(t, err)
	data := opts.seedData
	if data == nil {
		data = seed.Catalog
	}
	_, err = a.LoadSeed(ctx, data, "test seed")
	require.NoError(t, err)

	verifier, err := auth.NewHS256Verifier([]byte(secret))
	require.NoError(t, err)
	srv, err := server.New(server.Config{Name: "pricing", Logger: logger, Verifier: verifier, Policy: grpcapi.Policy(), Errors: grpcapi.Errors, ShutdownTimeout: 5 * time.Second})
	require.NoError(t, err)
	api, err := grpcapi.New(grpcapi.Config{App: a, Heartbeat: opts.heartbeat})
	require.NoError(t, err)
	api.Register(srv.GRPC())
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)

	var g errgroup.Group
	g.Go(func() error { return srv.Serve(ctx, lis) })
	g.Go(func() error { return a.Run(ctx) })
	t.Cleanup(func() {
		cancel()
		require.NoError(t, g.Wait())
		pool.Close()
	})
	return &replica{app: a, addr: lis.Addr().String(), pool: pool}
}

// token mints a token for subject with roles.
func token(t *testing.T, subject string, roles ...auth.Role) string {
	t.Helper()
	tok, err := auth.Mint([]byte(secret), auth.Claims{Subject: subject, OrgID: "org-1", Roles: roles}, time.Hour)
	require.NoError(t, err)
	return tok
}

// client dials r with token ("" for none).
func (r *replica) client(t *testing.T, tok string) pricingv1.PricingServiceClient {
	t.Helper()
	conn, err := rpcclient.Dial(r.addr, tok)
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	return pricingv1.NewPricingServiceClient(conn)
}

func (r *replica) ops(t *testing.T) pricingv1.PricingServiceClient {
	return r.client(t, token(t, "user:ops-alice", auth.RoleOps))
}

func (r *replica) service(t *testing.T, name string) pricingv1.PricingServiceClient {
	return r.client(t, token(t, "service:"+name, auth.RoleService))
}
