package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/tallyhq/tally/pkg/auth"
	instancesv1 "github.com/tallyhq/tally/pkg/gen/tally/instances/v1"
	ledgerv1 "github.com/tallyhq/tally/pkg/gen/tally/ledger/v1"
	notificationsv1 "github.com/tallyhq/tally/pkg/gen/tally/notifications/v1"
	paymentsv1 "github.com/tallyhq/tally/pkg/gen/tally/payments/v1"
	pricingv1 "github.com/tallyhq/tally/pkg/gen/tally/pricing/v1"
	"github.com/tallyhq/tally/pkg/money"
)

// TestAgainstTheStack runs every command against the real services: each subtest works on its
// own organization, so they run in parallel.
func TestAgainstTheStack(t *testing.T) {
	s := startStack(t)
	for name, fn := range map[string]func(*testing.T, *stack){
		"grant then balance shows it":                   testGrantThenBalance,
		"an adjustment replayed with its key is one":    testAdjustReplay,
		"transactions page and filter by kind":          testTransactionsPaging,
		"price changes scheduled and listed":            testPriceChanges,
		"a refund takes the credits back":               testRefund,
		"a review item is listed and resolved":          testReviewItems,
		"email deliveries are listed":                   testDeliveries,
		"rentals start, list and stop":                  testRentals,
		"errors carry the status and the exit code":     testErrors,
		"addresses and token from flags, not the stack": testFlagsOverStack,
		"TLS through a terminating proxy":               testTLS,
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			fn(t, s)
		})
	}
}

// decode reads -o json output as the API's message.
func decode[M proto.Message](t *testing.T, out string, m M) M {
	t.Helper()
	require.NoError(t, protojson.Unmarshal([]byte(out), m), "output: %s", out)
	return m
}

func nanos(t *testing.T, m interface {
	GetUnits() int64
	GetNanos() int32
}) int64 {
	t.Helper()
	return m.GetUnits()*money.NanosPerUnit + int64(m.GetNanos())
}

// rowWith returns the table line containing every one of parts, failing when there is none.
func rowWith(t *testing.T, table string, parts ...string) string {
	t.Helper()
	for _, line := range strings.Split(table, "\n") {
		all := line != ""
		for _, p := range parts {
			all = all && strings.Contains(line, p)
		}
		if all {
			return line
		}
	}
	require.Failf(t, "no such row", "no row with %q in:\n%s", parts, table)
	return ""
}

func testGrantThenBalance(t *testing.T, s *stack) {
	org := uniqueOrg(t)
	before := s.ok(t, "balance", org)
	require.Regexp(t, `(?m)^ORG\s+BALANCE\s+AVAILABLE\s+HELD\s+EXPIRES\s+VERSION$`, before.stdout)
	require.Regexp(t, `(?m)^`+org+`\s+\$0\.00\s+\$0\.00\s+\$0\.00\s+-\s+`, before.stdout)

	g := s.ok(t, "grant", org, "--amount", "1234.5", "--reason", "welcome credits")
	require.Regexp(t, `^idempotency key: tallyctl-[0-9a-f]{32} `, g.stderr, "the generated key is printed")
	row := rowWith(t, g.stdout, "credit", "welcome credits")
	require.Contains(t, row, "$1,234.50")

	after := s.ok(t, "balance", org)
	require.Regexp(t, `(?m)^`+org+`\s+\$1,234\.50\s+\$1,234\.50\s+\$0\.00\s+\d{4}-\d\d-\d\dT`, after.stdout)
	js := decode(t, s.ok(t, "balance", org, "-o", "json").stdout, &ledgerv1.GetBalanceResponse{})
	require.Equal(t, int64(1234_500_000_000), nanos(t, js.GetBalance()))
	require.Equal(t, "USD", js.GetBalance().GetCurrencyCode())
	require.NotNil(t, js.GetExpiresAt())

	// A sub-cent grant is shown exactly, never rounded.
	s.ok(t, "grant", org, "--amount", "0.000000001", "--reason", "one nano")
	require.Contains(t, s.ok(t, "balance", org).stdout, "$1,234.500000001")
}

func testAdjustReplay(t *testing.T, s *stack) {
	org := uniqueOrg(t)
	s.ok(t, "grant", org, "--amount", "20", "--reason", "start")
	first := s.ok(t, "adjust", org, "--amount", "-5", "--reason", "double-charged rental")
	key := regexp.MustCompile(`--idempotency-key (tallyctl-[0-9a-f]+)`).FindStringSubmatch(first.stderr)
	require.Len(t, key, 2, "stderr: %s", first.stderr)
	tx1 := decode(t, s.ok(t, "adjust", org, "--amount", "-5", "--reason", "double-charged rental", "--idempotency-key", key[1], "-o", "json").stdout,
		&ledgerv1.AdjustResponse{})
	require.NotContains(t, first.stdout, "idempotency key:", "the key goes to stderr, not into the table")
	require.Contains(t, first.stdout, tx1.GetTransaction().GetId(), "the replay answers the original transaction")
	require.Equal(t, key[1], tx1.GetTransaction().GetIdempotencyKey())
	require.Equal(t, int64(15*money.NanosPerUnit), nanos(t, tx1.GetBalance()), "adjusted once")

	// The same key with another amount is refused, and nothing changes.
	again := s.ctl(t, "adjust", org, "--amount", "-6", "--reason", "double-charged rental", "--idempotency-key", key[1])
	require.Equal(t, exitFailed, again.code)
	require.Contains(t, again.stderr, "ledger Adjust: AlreadyExists: ")
	adjustments := s.ok(t, "transactions", org, "--kind", "adjustment")
	require.Equal(t, 2, strings.Count(adjustments.stdout, "\n"), "a header and one adjustment: %s", adjustments.stdout)
	require.Contains(t, rowWith(t, adjustments.stdout, key[1]), "-$5.00")
	require.Regexp(t, `(?m)^`+org+`\s+\$15\.00\s`, s.ok(t, "balance", org).stdout)
}

func testTransactionsPaging(t *testing.T, s *stack) {
	org := uniqueOrg(t)
	for i := 1; i <= 3; i++ {
		s.ok(t, "grant", org, "--amount", strconv.Itoa(i), "--reason", "grant "+strconv.Itoa(i))
	}
	s.ok(t, "adjust", org, "--amount", "-1", "--reason", "correction")

	page1 := s.ok(t, "transactions", org, "--kind", "credit", "--page-size", "2")
	require.Contains(t, page1.stdout, "grant 3")
	require.Contains(t, page1.stdout, "grant 2")
	require.NotContains(t, page1.stdout, "correction", "only credits")
	tok := regexp.MustCompile(`more: add --page-token (\S+)`).FindStringSubmatch(page1.stderr)
	require.Len(t, tok, 2, "stderr: %s", page1.stderr)
	page2 := decode(t, s.ok(t, "transactions", org, "--kind", "credit", "--page-size", "2", "--page-token", tok[1], "-o", "json").stdout,
		&ledgerv1.ListTransactionsResponse{})
	require.Len(t, page2.GetTransactions(), 1)
	require.Equal(t, "grant 1", page2.GetTransactions()[0].GetReason())
	require.Equal(t, ledgerv1.TransactionKind_TRANSACTION_KIND_CREDIT, page2.GetTransactions()[0].GetKind())

	all := decode(t, s.ok(t, "txs", org, "-o", "json").stdout, &ledgerv1.ListTransactionsResponse{})
	require.Len(t, all.GetTransactions(), 4)
	require.Equal(t, "correction", all.GetTransactions()[0].GetReason(), "newest first")
}

func testPriceChanges(t *testing.T, s *stack) {
	when := time.Now().Add(48 * time.Hour).UTC().Truncate(time.Second)
	set := s.ok(t, "prices", "set-model", "llama-3.1-8b-instruct", "--unit", "input_tokens=0.25/1000000",
		"--unit", "output_tokens=0.3/1000000", "--effective-from", when.Format(time.RFC3339), "--reason", "new GPU costs",
		"--idempotency-key", "tallyctl-test-price-1")
	require.Contains(t, set.stdout, "Llama 3.1 8B Instruct", "the display name is kept from the current version")
	require.Contains(t, set.stdout, "input_tokens $0.25/1000000, output_tokens $0.30/1000000")

	sched := s.ok(t, "prices", "scheduled")
	row := rowWith(t, sched.stdout, "llama-3.1-8b-instruct")
	require.Contains(t, row, when.Format(time.RFC3339))
	require.Contains(t, row, "$0.25/1000000")
	js := decode(t, s.ok(t, "prices", "scheduled", "-o", "json").stdout, &pricingv1.CatalogSnapshot{})
	require.NotEmpty(t, js.GetModels())

	now := s.ok(t, "prices", "models")
	require.Contains(t, rowWith(t, now.stdout, "llama-3.1-8b-instruct"), "input_tokens $0.18/1000000", "the old price is in force until then")
	later := s.ok(t, "prices", "models", "--at", "72h")
	require.Contains(t, rowWith(t, later.stdout, "llama-3.1-8b-instruct"), "input_tokens $0.25/1000000")

	// The same change again is a replay, said on stderr.
	again := s.ok(t, "prices", "set-model", "llama-3.1-8b-instruct", "--unit", "input_tokens=0.25/1000000",
		"--unit", "output_tokens=0.3/1000000", "--effective-from", when.Format(time.RFC3339), "--reason", "new GPU costs",
		"--idempotency-key", "tallyctl-test-price-1")
	require.Contains(t, again.stderr, "replayed")

	inst := s.ok(t, "prices", "set-instance", "gpu-a10g-small", "--hourly-price", "1.10", "--effective-from", "24h", "--reason", "year-end")
	require.Contains(t, rowWith(t, inst.stdout, "gpu-a10g-small"), "$1.10")
	require.Contains(t, rowWith(t, s.ok(t, "prices", "scheduled").stdout, "gpu-a10g-small"), "$1.10")
	require.Contains(t, rowWith(t, s.ok(t, "prices", "instances").stdout, "gpu-a10g-small"), "true")
}

// paidTopUp makes an organization's admin start a checkout and delivers Stripe's signed
// webhook for it (the test-mode page does the same), until the payment is credited.
func paidTopUp(t *testing.T, s *stack, org string, units int64, amountTotal int64) *paymentsv1.CreateCheckoutSessionResponse {
	t.Helper()
	admin := auth.Claims{Subject: "admin-" + org, OrgID: org, Email: "admin@" + org + ".test", Name: "Admin", Roles: []auth.Role{auth.RoleAdmin}}
	client := paymentsv1.NewPaymentsServiceClient(s.dial(t, "payments", admin))
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	co, err := client.CreateCheckoutSession(ctx, &paymentsv1.CreateCheckoutSessionRequest{OrgId: org, Amount: money.ToProto(money.Nanos(units*money.NanosPerUnit), "USD")})
	require.NoError(t, err)
	session, err := json.Marshal(map[string]any{"id": co.GetSessionId(), "object": "checkout.session", "status": "complete",
		"payment_status": "paid", "mode": "payment", "amount_total": amountTotal, "currency": "usd",
		"payment_intent": "pi_test_" + co.GetPaymentId(), "payment_method_types": []string{"card"}, "client_reference_id": org,
		"metadata": map[string]string{"tally_payment_id": co.GetPaymentId(), "tally_org_id": org}, "created": time.Now().Unix()})
	require.NoError(t, err)
	payload, err := json.Marshal(map[string]any{"id": "evt_" + randomHex(t)[:16], "object": "event", "type": "checkout.session.completed",
		"api_version": "2023-10-16", "created": time.Now().Unix(), "livemode": false, "data": map[string]json.RawMessage{"object": session}})
	require.NoError(t, err)
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	mac := hmac.New(sha256.New, []byte("whsec_tally_dev_secret")) // test mode's webhook secret
	mac.Write([]byte(ts + "."))
	mac.Write(payload)
	_, err = client.HandleStripeWebhook(ctx, &paymentsv1.HandleStripeWebhookRequest{Payload: payload, Signature: "t=" + ts + ",v1=" + hex.EncodeToString(mac.Sum(nil))})
	require.NoError(t, err)
	return co
}

func testRefund(t *testing.T, s *stack) {
	org := uniqueOrg(t)
	co := paidTopUp(t, s, org, 50, 5000)
	require.Eventually(t, func() bool {
		r := s.ctl(t, "payments", org)
		return r.code == exitOK && strings.Contains(rowWith(t, r.stdout, co.GetPaymentId()), "succeeded")
	}, 30*time.Second, 50*time.Millisecond)
	require.Regexp(t, `(?m)^`+org+`\s+\$50\.00\s`, s.ok(t, "balance", org).stdout)

	r := s.ok(t, "refund", co.GetPaymentId(), "--amount", "10", "--reason", "customer request", "--idempotency-key", "refund-"+org)
	require.Contains(t, rowWith(t, r.stdout, "customer request"), "$10.00")
	require.Contains(t, rowWith(t, r.stdout, co.GetPaymentId()), "$10.00", "the payment shows what was refunded")
	js := decode(t, s.ok(t, "refund", co.GetPaymentId(), "--amount", "10", "--reason", "customer request",
		"--idempotency-key", "refund-"+org, "-o", "json").stdout, &paymentsv1.RefundPaymentResponse{})
	require.Equal(t, paymentsv1.RefundStatus_REFUND_STATUS_SUCCEEDED, js.GetRefund().GetStatus())
	require.Equal(t, int64(10*money.NanosPerUnit), nanos(t, js.GetRefund().GetCreditsTakenBack()))
	require.Regexp(t, `(?m)^`+org+`\s+\$40\.00\s`, s.ok(t, "balance", org).stdout, "refunded once, replay included")
}

func testReviewItems(t *testing.T, s *stack) {
	org := uniqueOrg(t)
	co := paidTopUp(t, s, org, 20, 1999) // Stripe reports another amount: a review item, no credit
	var id string
	require.Eventually(t, func() bool {
		list := decode(t, s.ok(t, "reviews", "list", "-o", "json").stdout, &paymentsv1.ListReviewItemsResponse{})
		for _, it := range list.GetItems() {
			if it.GetPaymentId() == co.GetPaymentId() {
				id = it.GetId()
			}
		}
		return id != ""
	}, 30*time.Second, 50*time.Millisecond)
	open := s.ok(t, "reviews", "list")
	require.Contains(t, rowWith(t, open.stdout, id), "amount_mismatch")

	res := s.ok(t, "reviews", "resolve", id, "--resolution", "confirmed with the customer")
	row := rowWith(t, res.stdout, id)
	require.Contains(t, row, "confirmed with the customer")
	require.Contains(t, row, "ops-test", "resolved by the token's subject")
	require.NotContains(t, s.ok(t, "reviews", "list").stdout, id, "resolved items leave the open list")
	all := decode(t, s.ok(t, "reviews", "list", "--all", "-o", "json").stdout, &paymentsv1.ListReviewItemsResponse{})
	var found *paymentsv1.ReviewItem
	for _, it := range all.GetItems() {
		if it.GetId() == id {
			found = it
		}
	}
	require.NotNil(t, found)
	require.NotNil(t, found.GetResolvedAt())
	require.Regexp(t, `(?m)^`+org+`\s+\$0\.00\s`, s.ok(t, "balance", org).stdout, "nothing credited")
}

func testDeliveries(t *testing.T, s *stack) {
	org := uniqueOrg(t)
	admin := auth.Claims{Subject: "admin-" + org, OrgID: org, Email: "admin@" + org + ".test", Name: "Admin", Roles: []auth.Role{auth.RoleAdmin}}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	// A member is known to notifications from their first settings call; admins get payment emails.
	_, err := notificationsv1.NewNotificationsServiceClient(s.dial(t, "notifications", admin)).GetNotificationSettings(ctx,
		&notificationsv1.GetNotificationSettingsRequest{OrgId: org, MemberId: admin.Subject})
	require.NoError(t, err)
	paidTopUp(t, s, org, 30, 3000)

	require.Eventually(t, func() bool {
		r := s.ctl(t, "deliveries", "--org", org, "--status", "sent")
		return r.code == exitOK && strings.Contains(r.stdout, "payment_succeeded")
	}, 30*time.Second, 50*time.Millisecond)
	row := rowWith(t, s.ok(t, "deliveries", "--org", org).stdout, "payment_succeeded")
	require.Contains(t, row, "admin@"+org+".test")
	require.Contains(t, row, "sent")
	js := decode(t, s.ok(t, "deliveries", "--org", org, "-o", "json").stdout, &notificationsv1.ListDeliveriesResponse{})
	require.Len(t, js.GetDeliveries(), 1)
	require.Equal(t, notificationsv1.DeliveryStatus_DELIVERY_STATUS_SENT, js.GetDeliveries()[0].GetStatus())
	require.Empty(t, decode(t, s.ok(t, "deliveries", "--org", org, "--status", "failed", "-o", "json").stdout,
		&notificationsv1.ListDeliveriesResponse{}).GetDeliveries())
}

func testRentals(t *testing.T, s *stack) {
	org := uniqueOrg(t)
	s.ok(t, "grant", org, "--amount", "100", "--reason", "rental budget")
	inst := "i-" + randomHex(t)[:8]
	start := s.ok(t, "rentals", "start", inst, "--org", org, "--type", "gpu-a10g-small", "--idempotency-key", "start-"+inst)
	require.Contains(t, rowWith(t, start.stdout, inst), "running")
	replay := s.ok(t, "rentals", "start", inst, "--org", org, "--type", "gpu-a10g-small", "--idempotency-key", "start-"+inst)
	require.Contains(t, replay.stderr, "replayed")

	list := decode(t, s.ok(t, "rentals", "list", org, "-o", "json").stdout, &instancesv1.ListRentalsResponse{})
	require.Len(t, list.GetRentals(), 1)
	require.Equal(t, instancesv1.RentalState_RENTAL_STATE_RUNNING, list.GetRentals()[0].GetState())
	require.Contains(t, rowWith(t, s.ok(t, "rentals", "get", org, inst).stdout, inst), "gpu-a10g-small")

	stop := s.ok(t, "rentals", "stop", inst)
	require.Contains(t, rowWith(t, stop.stdout, inst), "stopped")
	require.Contains(t, rowWith(t, s.ok(t, "rentals", "list", org).stdout, inst), "stopped")
}

func testErrors(t *testing.T, s *stack) {
	// A member of another organization: refused by the ledger's policy.
	member := s.token(t, auth.Claims{Subject: "user-x", OrgID: "other", Roles: []auth.Role{auth.RoleMember}})
	r := s.ctl(t, "--token", member, "balance", uniqueOrg(t))
	require.Equal(t, exitAuth, r.code)
	require.Regexp(t, `^tallyctl: ledger GetBalance: PermissionDenied: .+ \(request [A-Za-z0-9._-]+\)\n$`, r.stderr)

	// No token at all: Unauthenticated, with the hint.
	none := runCtl(t, nil, "--ledger-addr", s.addrs["ledger"], "balance", "acme")
	require.Equal(t, exitAuth, none.code)
	require.Contains(t, none.stderr, "ledger GetBalance: Unauthenticated: ")
	require.Contains(t, none.stderr, "no token was sent")

	// A refusal of the request itself.
	bad := s.ctl(t, "adjust", uniqueOrg(t), "--amount", "5", "--reason", "x", "--idempotency-key", "rental:i-1:1")
	require.Equal(t, exitFailed, bad.code)
	require.Contains(t, bad.stderr, "ledger Adjust: InvalidArgument: ")
	require.Contains(t, bad.stderr, "reserved")

	// A usage error sends nothing.
	usage := s.ctl(t, "transactions", "acme", "--kind", "bonus")
	require.Equal(t, exitUsage, usage.code)
	require.Contains(t, usage.stderr, `--kind "bonus": want one of adjustment, capture, credit, debit, expiry`)
}

func testFlagsOverStack(t *testing.T, s *stack) {
	org := uniqueOrg(t)
	ops := s.token(t, auth.Claims{Subject: "ops-env", Roles: []auth.Role{auth.RoleOps}})
	// The address from its variable and the token from $TALLY_TOKEN, no stack file.
	env := map[string]string{"TALLY_TOKEN": ops, "TALLY_LEDGER_ADDR": s.addrs["ledger"]}
	r := runCtl(t, env, "grant", org, "--amount", "3", "--reason", "from env")
	require.Equal(t, exitOK, r.code, r.stderr)
	require.Contains(t, rowWith(t, r.stdout, "from env"), "ops-env", "the actor is the token's subject")
	// A flag wins over the stack file: a dead address fails as unreachable, within --timeout.
	dead := s.ctl(t, "--ledger-addr", "127.0.0.1:1", "--timeout", "2s", "balance", org)
	require.Equal(t, exitUnreachable, dead.code)
	require.Contains(t, dead.stderr, "ledger GetBalance: Unavailable: ")
}

// tlsProxy terminates TLS with a fresh self-signed certificate for 127.0.0.1 and forwards the
// bytes to target, as a proxy in front of the plaintext services would; it returns its address
// and the certificate's PEM file.
func tlsProxy(t *testing.T, target string) (addr, caFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "tallyctl test proxy"},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true, IsCA: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	caFile = filepath.Join(t.TempDir(), "ca.pem")
	require.NoError(t, os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600))
	lis, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{MinVersion: tls.VersionTLS12, NextProtos: []string{"h2"},
		Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}})
	require.NoError(t, err)
	t.Cleanup(func() { _ = lis.Close() })
	go func() {
		for {
			in, err := lis.Accept()
			if err != nil {
				return
			}
			go func() {
				defer in.Close()
				out, err := net.Dial("tcp", target)
				if err != nil {
					return
				}
				defer out.Close()
				go func() { _, _ = io.Copy(out, in) }()
				_, _ = io.Copy(in, out)
			}()
		}
	}()
	return lis.Addr().String(), caFile
}

func testTLS(t *testing.T, s *stack) {
	org := uniqueOrg(t)
	addr, ca := tlsProxy(t, s.addrs["ledger"])
	r := s.ok(t, "--tls", "--ca-file", ca, "--ledger-addr", addr, "balance", org)
	require.Regexp(t, `(?m)^`+org+`\s+\$0\.00\s`, r.stdout)
	// Without the CA the proxy's certificate is not trusted; plaintext to a TLS port fails too.
	for _, args := range [][]string{{"--tls", "--ledger-addr", addr}, {"--ledger-addr", addr}} {
		bad := s.ctl(t, append(args, "--timeout", "2s", "balance", org)...)
		require.Equal(t, exitUnreachable, bad.code, "%v: %s", args, bad.stderr)
		require.Contains(t, bad.stderr, "ledger GetBalance: Unavailable: ")
	}
	// Usage mistakes are found before dialing.
	notPEM := filepath.Join(t.TempDir(), "ca.pem")
	require.NoError(t, os.WriteFile(notPEM, []byte("not a certificate"), 0o600))
	for _, args := range [][]string{{"--ca-file", ca}, {"--tls", "--ca-file", notPEM}, {"--tls", "--ca-file", notPEM + ".missing"}} {
		require.Equal(t, exitUsage, s.ctl(t, append(args, "balance", org)...).code, args)
	}
}
