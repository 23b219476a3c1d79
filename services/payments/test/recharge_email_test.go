package test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tallyhq/tally/pkg/testenv"
	"github.com/tallyhq/tally/services/ledger/ledgertest"
	"github.com/tallyhq/tally/services/notifications/notificationstest"
	"github.com/tallyhq/tally/services/payments/internal/payment"
	"github.com/tallyhq/tally/services/payments/internal/service"
)

type mail struct {
	ID      string `json:"ID"`
	Subject string `json:"Subject"`
	Text    string `json:"Text"`
}

// mailTo lists the messages mailpit received for addr, with their text.
func mailTo(t *testing.T, base, addr string) []mail {
	t.Helper()
	var list struct {
		Messages []mail `json:"messages"`
	}
	getMail(t, base+"/api/v1/search?limit=100&query="+url.QueryEscape("to:"+addr), &list)
	for i, m := range list.Messages {
		getMail(t, base+"/api/v1/message/"+url.PathEscape(m.ID), &list.Messages[i])
	}
	return list.Messages
}

func getMail(t *testing.T, u string, v any) {
	t.Helper()
	resp, err := http.Get(u)
	require.NoError(t, err)
	defer func() { _ = resp.Body.Close() }()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.NoError(t, json.NewDecoder(resp.Body).Decode(v))
}

// startWithMail runs payments, a notifications replica and mailpit on the ledger's database.
func startWithMail(t *testing.T) (*env, string) {
	t.Helper()
	l := ledgertest.Start(t, ledgertest.Options{})
	mp := testenv.Mailpit(t)
	n := notificationstest.Start(t, notificationstest.Options{DatabaseURL: l.DatabaseURL, LedgerAddr: l.Addr, Secret: ledgertest.Secret,
		SMTPAddr: mp.SMTPAddr(), ConsoleURL: consoleURL})
	e := startRecharge(t, options{ledger: l, retry: 100 * time.Millisecond,
		configure: func(c *service.Config) { c.NotificationsAddr = n.Addr }})
	return e, mp.HTTPURL()
}

// notified waits until every failure email of org was handed to notifications.
func (e *env) notified(t *testing.T, org string) {
	t.Helper()
	require.Eventually(t, func() bool {
		var due bool
		err := e.sql(t, `SELECT EXISTS (SELECT 1 FROM payments.payments WHERE org_id = $1 AND notify_after IS NOT NULL)`, org).Scan(&due)
		return err == nil && !due
	}, 30*time.Second, 20*time.Millisecond)
}

func TestAutoRechargeDeclinesEmailTheAdminsOnceEach(t *testing.T) {
	t.Parallel()
	e, mailURL := startWithMail(t)
	const org = "org-rc-mail-declined"
	admin := "ann@" + org + ".test"
	e.seed(t, org, 60*unit, "seed")
	e.saveCard(t, org, payment.TestCardDeclined)
	e.rule(t, org, 50*unit, 20*unit, 0, 500*unit)
	for i := range 3 {
		debit(t, e.ledgerOps, org, 20*unit, fmt.Sprintf("use-%d", i))
		e.settled(t, org)
		e.seed(t, org, 20*unit, fmt.Sprintf("back-%d", i))
		e.settled(t, org)
	}
	e.notified(t, org)
	var msgs []mail
	require.Eventually(t, func() bool { msgs = mailTo(t, mailURL, admin); return len(msgs) >= 3 }, 30*time.Second, 50*time.Millisecond)
	// A retry pass that finds nothing due sends nothing more.
	_, err := e.svc.RetryPending(t.Context())
	require.NoError(t, err)
	msgs = mailTo(t, mailURL, admin)
	require.Len(t, msgs, 3, "one email per declined recharge")
	disabled := 0
	for _, m := range msgs {
		require.Contains(t, m.Subject, "the card was declined")
		require.Contains(t, m.Text, "$20.00")
		require.Contains(t, m.Text, "Your card was declined.")
		require.Contains(t, m.Text, consoleURL+"/billing")
		if strings.Contains(m.Text, "Auto-recharge is now turned off after 3 failed recharges in a row") {
			disabled++
		}
	}
	require.Equal(t, 1, disabled, "the third email says the rule is off")
}

func TestAutoRechargeAuthenticationRequiredEmail(t *testing.T) {
	t.Parallel()
	e, mailURL := startWithMail(t)
	const org = "org-rc-mail-auth"
	admin := "ann@" + org + ".test"
	e.seed(t, org, 60*unit, "seed")
	e.saveCard(t, org, payment.TestCardAuthRequired)
	e.rule(t, org, 50*unit, 20*unit, 0, 500*unit)
	debit(t, e.ledgerOps, org, 20*unit, "use")
	e.settled(t, org)
	e.notified(t, org)
	var msgs []mail
	require.Eventually(t, func() bool { msgs = mailTo(t, mailURL, admin); return len(msgs) >= 1 }, 30*time.Second, 50*time.Millisecond)
	require.Len(t, msgs, 1)
	require.Equal(t, "Auto-recharge of "+org+" needs the card to be authenticated", msgs[0].Subject)
	require.Contains(t, msgs[0].Text, "authenticate the payment (3-D Secure)")
	require.Contains(t, msgs[0].Text, "Failed recharges in a row: 1")
	require.Contains(t, msgs[0].Text, consoleURL+"/billing")
	auto := e.automatic(t, org)
	require.Len(t, auto, 1)
	require.Equal(t, string(payment.ChargeAuthenticationRequired), auto[0].GetFailureReason())
}
