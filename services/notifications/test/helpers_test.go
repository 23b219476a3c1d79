package test

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"
	moneypb "google.golang.org/genproto/googleapis/type/money"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	"github.com/tallyhq/tally/pkg/auth"
	ledgerv1 "github.com/tallyhq/tally/pkg/gen/tally/ledger/v1"
	notificationsv1 "github.com/tallyhq/tally/pkg/gen/tally/notifications/v1"
	"github.com/tallyhq/tally/pkg/money"
	"github.com/tallyhq/tally/pkg/testenv"
	"github.com/tallyhq/tally/services/ledger/ledgertest"
	"github.com/tallyhq/tally/services/notifications/internal/service"
	"github.com/tallyhq/tally/services/notifications/notificationstest"
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

// start runs a notifications replica (sharing the ledger's database, as in production) until
// the test ends or Stop.
func (s *stack) start(t *testing.T, configure ...func(*service.Config)) *notificationstest.Notifications {
	t.Helper()
	var logger *slog.Logger
	if os.Getenv("NOTIFICATIONS_TEST_LOG") != "" {
		logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return notificationstest.Start(t, notificationstest.Options{
		DatabaseURL: s.dbURL, LedgerAddr: s.ledger.Addr, Secret: ledgertest.Secret, SMTPAddr: s.mail.SMTPAddr(),
		ConsoleURL: consoleURL, Logger: logger,
		Configure: func(c *service.Config) {
			for _, f := range configure {
				f(c)
			}
		},
	})
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
		var last, pending int64
		var cursor string
		if err := s.db.QueryRow(t.Context(), `SELECT coalesce(max(seq), 0) FROM ledger.events`).Scan(&last); err != nil {
			return false
		}
		if err := s.db.QueryRow(t.Context(), `SELECT position FROM notifications.event_cursors WHERE name = 'ledger'`).Scan(&cursor); err != nil {
			return false
		}
		if err := s.db.QueryRow(t.Context(), `SELECT count(*) FROM notifications.emails WHERE status = 'pending'`).Scan(&pending); err != nil {
			return false
		}
		return (cursor == fmt.Sprintf("main:%d", last) || last == 0 && cursor == "") && pending == 0
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
