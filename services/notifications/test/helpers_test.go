package test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"
	moneypb "google.golang.org/genproto/googleapis/type/money"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	"github.com/tallyhq/tally/pkg/auth"
	ledgerv1 "github.com/tallyhq/tally/pkg/gen/tally/ledger/v1"
	notificationsv1 "github.com/tallyhq/tally/pkg/gen/tally/notifications/v1"
	"github.com/tallyhq/tally/pkg/money"
	"github.com/tallyhq/tally/pkg/rpcclient"
	"github.com/tallyhq/tally/pkg/server"
	"github.com/tallyhq/tally/pkg/testenv"
	"github.com/tallyhq/tally/services/ledger/ledgertest"
	"github.com/tallyhq/tally/services/notifications/internal/sender"
	"github.com/tallyhq/tally/services/notifications/service"
)

// Generous bounds for asynchronous delivery; they only cap how long a failing test waits.
const (
	waitFor = 60 * time.Second
	tick    = 50 * time.Millisecond
)

const consoleURL = "https://app.tally.test"

// mailbox is an SMTP server with mailpit's HTTP API.
type mailbox interface {
	SMTPAddr() string
	HTTPURL() string
}

// stack is one test's ledger, database and SMTP server.
type stack struct {
	ledger *ledgertest.Ledger
	ops    ledgerv1.LedgerServiceClient
	dbURL  string
	mail   mailbox
	db     *pgxpool.Pool
}

func newStack(t *testing.T, opts ledgertest.Options) *stack {
	t.Helper()
	l := ledgertest.Start(t, opts)
	db, err := pgxpool.New(t.Context(), l.DatabaseURL)
	require.NoError(t, err)
	t.Cleanup(db.Close)
	return &stack{ledger: l, ops: l.Client(t, ledgertest.OpsToken(t)), dbURL: l.DatabaseURL, mail: testenv.Mailpit(t), db: db}
}

// replica is one running notifications service.
type replica struct {
	Addr     string
	stop     context.CancelFunc
	done     chan error
	stopOnce sync.Once
}

// start runs a notifications replica (sharing the ledger's database, as in production) until
// the test ends or Stop.
func (s *stack) start(t *testing.T, mutate ...func(*service.Config)) *replica {
	t.Helper()
	host, port, err := net.SplitHostPort(s.mail.SMTPAddr())
	require.NoError(t, err)
	p, err := strconv.Atoi(port)
	require.NoError(t, err)
	cfg := service.Config{
		DatabaseURL: s.dbURL,
		Auth:        server.AuthConfig{JWTSecret: ledgertest.Secret},
		LedgerAddr:  s.ledger.Addr,
		ConsoleURL:  consoleURL,
		SMTP: sender.SMTPConfig{
			Host: host, Port: p, TLS: sender.TLSNone, From: "Tally <notifications@tally.test>", Timeout: 5 * time.Second,
		},
		SendWorkers:      2,
		PollInterval:     50 * time.Millisecond,
		RetryBase:        100 * time.Millisecond,
		RetryMax:         time.Second,
		MaxAttempts:      100,
		LeaseInterval:    200 * time.Millisecond,
		EventBatch:       500,
		ReminderInterval: 100 * time.Millisecond,
		ExpiryNotice:     7 * 24 * time.Hour,
		DBMaxConns:       10,
	}
	for _, m := range mutate {
		m(&cfg)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	r := &replica{Addr: lis.Addr().String(), stop: cancel, done: make(chan error, 1)}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	if os.Getenv("NOTIFICATIONS_TEST_LOG") != "" {
		logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})).With("replica", r.Addr)
	}
	go func() { r.done <- service.Run(ctx, cfg, lis, logger) }()
	t.Cleanup(func() { r.Stop(t) })
	waitServing(t, r)
	return r
}

func waitServing(t *testing.T, r *replica) {
	t.Helper()
	conn, err := grpc.NewClient(r.Addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	defer func() { _ = conn.Close() }()
	hc := grpc_health_v1.NewHealthClient(conn)
	require.Eventually(t, func() bool {
		select {
		case err := <-r.done:
			r.done <- err
			return true
		default:
		}
		resp, err := hc.Check(t.Context(), &grpc_health_v1.HealthCheckRequest{})
		return err == nil && resp.GetStatus() == grpc_health_v1.HealthCheckResponse_SERVING
	}, waitFor, tick)
	select {
	case err := <-r.done:
		require.NoError(t, err, "notifications replica exited while starting")
		require.Fail(t, "notifications replica exited while starting")
	default:
	}
}

// Stop shuts the replica down and waits for it.
func (r *replica) Stop(t *testing.T) {
	t.Helper()
	r.stopOnce.Do(func() {
		r.stop()
		select {
		case err := <-r.done:
			if err != nil && !errors.Is(err, context.Canceled) {
				t.Errorf("notifications replica stopped with error: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Errorf("notifications replica did not stop")
		}
	})
}

func (r *replica) client(t *testing.T, token string) notificationsv1.NotificationsServiceClient {
	t.Helper()
	conn, err := rpcclient.Dial(r.Addr, token)
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	return notificationsv1.NewNotificationsServiceClient(conn)
}

func randomID(t *testing.T, prefix string) string {
	t.Helper()
	b := make([]byte, 6)
	_, err := rand.Read(b)
	require.NoError(t, err)
	return prefix + "-" + hex.EncodeToString(b)
}

// person is a member of an organization with a unique email address.
type person struct {
	id, org, email string
	token          string
}

func member(t *testing.T, org, name string, roles ...auth.Role) person {
	t.Helper()
	if len(roles) == 0 {
		roles = []auth.Role{auth.RoleMember}
	}
	p := person{id: name, org: org, email: randomID(t, name) + "@example.com"}
	p.token = ledgertest.Token(t, auth.Claims{Subject: name, OrgID: org, Email: p.email, Name: name, Roles: roles})
	return p
}

func usd(t *testing.T, s string) *moneypb.Money {
	t.Helper()
	n, err := money.ParseDecimal(s)
	require.NoError(t, err)
	return money.ToProto(n, "USD")
}

func usdAs(t *testing.T, s, currency string) *moneypb.Money {
	t.Helper()
	m := usd(t, s)
	m.CurrencyCode = currency
	return m
}

func (s *stack) credit(t *testing.T, org, amount string) {
	t.Helper()
	_, err := s.ops.Credit(t.Context(), &ledgerv1.CreditRequest{OrgId: org, Amount: usd(t, amount), IdempotencyKey: randomID(t, "credit"), Reason: "test"})
	require.NoError(t, err)
}

func (s *stack) debit(t *testing.T, org, amount string) {
	t.Helper()
	_, err := s.ops.Debit(t.Context(), &ledgerv1.DebitRequest{OrgId: org, Amount: usd(t, amount), IdempotencyKey: randomID(t, "debit")})
	require.NoError(t, err)
}

// enableAlert turns on p's low-credit alert at threshold (USD).
func enableAlert(t *testing.T, c notificationsv1.NotificationsServiceClient, p person, threshold string) *notificationsv1.NotificationSettings {
	t.Helper()
	resp, err := c.UpdateNotificationSettings(t.Context(), &notificationsv1.UpdateNotificationSettingsRequest{
		OrgId: p.org, MemberId: "me",
		Settings:   &notificationsv1.NotificationSettings{LowCreditAlertEnabled: true, LowCreditThreshold: usd(t, threshold)},
		UpdateMask: fieldMask("low_credit_alert_enabled", "low_credit_threshold"),
	})
	require.NoError(t, err)
	return resp.GetSettings()
}

// mailSummary is a message as listed by mailpit.
type mailSummary struct {
	ID        string `json:"ID"`
	MessageID string `json:"MessageID"`
	Subject   string `json:"Subject"`
}

// mailMessage is one message with its bodies.
type mailMessage struct {
	mailSummary
	Text string `json:"Text"`
	HTML string `json:"HTML"`
}

// messagesTo lists the messages mailpit received for addr.
func messagesTo(t *testing.T, m mailbox, addr string) []mailSummary {
	t.Helper()
	var out struct {
		Messages []mailSummary `json:"messages"`
	}
	getJSON(t, m.HTTPURL()+"/api/v1/search?limit=500&query="+url.QueryEscape("to:"+addr), &out)
	return out.Messages
}

func readMessage(t *testing.T, m mailbox, id string) mailMessage {
	t.Helper()
	var out mailMessage
	getJSON(t, m.HTTPURL()+"/api/v1/message/"+url.PathEscape(id), &out)
	return out
}

func getJSON(t *testing.T, u string, v any) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, u, nil)
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer func() { _ = resp.Body.Close() }()
	require.Equal(t, http.StatusOK, resp.StatusCode, u)
	require.NoError(t, json.NewDecoder(resp.Body).Decode(v))
}

// waitMessages waits until addr received at least n messages.
func waitMessages(t *testing.T, m mailbox, addr string, n int) {
	t.Helper()
	require.Eventually(t, func() bool { return len(messagesTo(t, m, addr)) >= n }, waitFor, tick, "waiting for %d messages to %s", n, addr)
}

// settle waits until the service has applied every ledger event and has no email left to send,
// and until mailpit lists every email recorded as sent.
func (s *stack) settle(t *testing.T) {
	t.Helper()
	require.Eventually(t, func() bool {
		var last, cursor, pending int64
		if err := s.db.QueryRow(t.Context(), `SELECT coalesce(max(seq), 0) FROM ledger.events`).Scan(&last); err != nil {
			return false
		}
		if err := s.db.QueryRow(t.Context(), `SELECT seq FROM notifications.event_cursors WHERE name = 'ledger'`).Scan(&cursor); err != nil {
			return false
		}
		if err := s.db.QueryRow(t.Context(), `SELECT count(*) FROM notifications.emails WHERE status = 'pending'`).Scan(&pending); err != nil {
			return false
		}
		return cursor == last && pending == 0
	}, waitFor, tick, "service did not settle")
	// An email is recorded sent once the SMTP server accepted it; wait until mailpit lists every
	// one of them, so that counting messages afterwards also proves that nothing more arrives.
	rows, err := s.db.Query(t.Context(), `SELECT to_address, count(*) FROM notifications.emails WHERE status = 'sent' GROUP BY to_address`)
	require.NoError(t, err)
	sent := map[string]int{}
	for rows.Next() {
		var addr string
		var n int
		require.NoError(t, rows.Scan(&addr, &n))
		sent[addr] = n
	}
	require.NoError(t, rows.Err())
	for addr, n := range sent {
		waitMessages(t, s.mail, addr, n)
	}
}

// requireMessages settles and asserts that addr received exactly n messages.
func (s *stack) requireMessages(t *testing.T, addr string, n int) []mailSummary {
	t.Helper()
	waitMessages(t, s.mail, addr, n)
	s.settle(t)
	msgs := messagesTo(t, s.mail, addr)
	if len(msgs) != n {
		subjects := make([]string, 0, 5)
		for _, m := range msgs[:min(len(msgs), 5)] {
			subjects = append(subjects, m.Subject)
		}
		require.Failf(t, "wrong number of messages", "%d messages to %s, want %d; first subjects: %q", len(msgs), addr, n, subjects)
	}
	return msgs
}

func (s *stack) countEmails(t *testing.T, where string, args ...any) int {
	t.Helper()
	var n int
	require.NoError(t, s.db.QueryRow(t.Context(), `SELECT count(*) FROM notifications.emails WHERE `+where, args...).Scan(&n))
	return n
}

func requireCode(t *testing.T, err error, code codes.Code) {
	t.Helper()
	require.Error(t, err)
	require.Equal(t, code.String(), status.Code(err).String(), "error: %v", err)
}

func fieldMask(paths ...string) *fieldmaskpb.FieldMask { return &fieldmaskpb.FieldMask{Paths: paths} }
