package main

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	moneypb "google.golang.org/genproto/googleapis/type/money"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	ledgerv1 "github.com/tallyhq/tally/pkg/gen/tally/ledger/v1"
	pricingv1 "github.com/tallyhq/tally/pkg/gen/tally/pricing/v1"
)

func TestFormatMoney(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   *moneypb.Money
		want string
	}{
		{nil, ""},
		{&moneypb.Money{CurrencyCode: "USD"}, "$0.00"},
		{&moneypb.Money{CurrencyCode: "USD", Units: 1234, Nanos: 500_000_000}, "$1,234.50"},
		{&moneypb.Money{CurrencyCode: "USD", Units: -5}, "-$5.00"},
		{&moneypb.Money{CurrencyCode: "USD", Nanos: -1500}, "-$0.0000015"},
		{&moneypb.Money{CurrencyCode: "USD", Units: 9_223_372_036, Nanos: 854_775_807}, "$9,223,372,036.854775807"},
		{&moneypb.Money{CurrencyCode: "JPY", Units: 1200}, "¥1,200"},
		{&moneypb.Money{CurrencyCode: "USD", Units: 1, Nanos: -1}, "invalid amount (1 units, -1 nanos USD)"},
	} {
		require.Equal(t, tc.want, formatMoney(tc.in), "%v", tc.in)
	}
}

func TestEnumNames(t *testing.T) {
	t.Parallel()
	require.Equal(t, "credit", enumName(ledgerv1.TransactionKind_TRANSACTION_KIND_CREDIT.String(), "TRANSACTION_KIND_"))
	require.Empty(t, enumName(ledgerv1.TransactionKind_TRANSACTION_KIND_UNSPECIFIED.String(), "TRANSACTION_KIND_"))

	for in, want := range map[string]ledgerv1.TransactionKind{
		"":                            ledgerv1.TransactionKind_TRANSACTION_KIND_UNSPECIFIED,
		"adjustment":                  ledgerv1.TransactionKind_TRANSACTION_KIND_ADJUSTMENT,
		"CAPTURE":                     ledgerv1.TransactionKind_TRANSACTION_KIND_CAPTURE,
		"TRANSACTION_KIND_EXPIRY":     ledgerv1.TransactionKind_TRANSACTION_KIND_EXPIRY,
		"transaction-kind-debit":      ledgerv1.TransactionKind_TRANSACTION_KIND_DEBIT,
		"credit":                      ledgerv1.TransactionKind_TRANSACTION_KIND_CREDIT,
		"speech-to-text-not-an-enum?": -1,
		"unspecified":                 -1,
	} {
		got, err := parseEnum("kind", in, "TRANSACTION_KIND_", ledgerv1.TransactionKind_value)
		if want == -1 {
			var ue usageError
			require.ErrorAs(t, err, &ue, in)
			require.EqualError(t, err, `--kind "`+in+`": want one of adjustment, capture, credit, debit, expiry`)
			continue
		}
		require.NoError(t, err, in)
		require.Equal(t, int32(want), got, in)
	}
}

func TestParseAmount(t *testing.T) {
	t.Parallel()
	m, err := parseAmount("amount", "-0.000000001", "")
	require.NoError(t, err)
	require.Equal(t, &moneypb.Money{Nanos: -1}, m)
	m, err = parseAmount("amount", "1234.5", "EUR")
	require.NoError(t, err)
	require.Equal(t, &moneypb.Money{CurrencyCode: "EUR", Units: 1234, Nanos: 500_000_000}, m)
	for in, msg := range map[string]string{
		"":             "--amount is required",
		"1.0000000001": "more than 9 fractional digits",
		"1e3":          "invalid decimal amount",
		"ten":          "invalid decimal amount",
	} {
		_, err := parseAmount("amount", in, "")
		require.ErrorContains(t, err, msg, in)
		var ue usageError
		require.ErrorAs(t, err, &ue)
	}
	_, err = parseAmount("amount", "1", "usd")
	require.ErrorContains(t, err, `--currency "usd": want an upper-case ISO 4217 code`)
}

func TestParseWhen(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	got, err := parseWhen("at", "", now)
	require.NoError(t, err)
	require.Nil(t, got, "unset is the server's now")
	got, err = parseWhen("at", "24h", now)
	require.NoError(t, err)
	require.Equal(t, now.Add(24*time.Hour), got.AsTime())
	got, err = parseWhen("at", "2026-12-24T00:00:00+01:00", now)
	require.NoError(t, err)
	require.Equal(t, time.Date(2026, 12, 23, 23, 0, 0, 0, time.UTC), got.AsTime())
	_, err = parseWhen("effective-from", "tomorrow", now)
	require.EqualError(t, err, `--effective-from "tomorrow": want an RFC 3339 time (2026-12-24T00:00:00Z) or a duration from now (24h)`)
}

func TestParseDimension(t *testing.T) {
	t.Parallel()
	d, err := parseDimension("input_tokens=0.25/1000000", "USD")
	require.NoError(t, err)
	require.Equal(t, "input_tokens", d.GetUnit())
	require.Equal(t, int64(1_000_000), d.GetPer())
	require.Equal(t, &moneypb.Money{CurrencyCode: "USD", Nanos: 250_000_000}, d.GetPrice())
	require.Equal(t, "input_tokens $0.25/1000000", formatDimensions([]*pricingv1.PriceDimension{d}))
	for _, in := range []string{"input_tokens", "input_tokens=0.25", "=1/1", "x=1/0", "x=1/-3", "x=one/1"} {
		_, err := parseDimension(in, "USD")
		require.Error(t, err, in)
	}
}

func TestTableAlignsAndMarksEmptyCells(t *testing.T) {
	t.Parallel()
	tb := newTable("org", "balance", "expires")
	tb.add("acme", "$1,234.50", "")
	tb.add("a-much-longer-org", "$0.00", formatTime(timestamppb.New(time.Date(2027, 3, 1, 9, 30, 0, 0, time.FixedZone("x", 3600)))))
	var out bytes.Buffer
	require.NoError(t, tb.write(&out))
	require.Equal(t, ""+
		"ORG                BALANCE    EXPIRES\n"+
		"acme               $1,234.50  -\n"+
		"a-much-longer-org  $0.00      2027-03-01T08:30:00Z\n", out.String())
}

func TestJSONIsTheAPIsJSON(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	require.NoError(t, writeJSON(&out, &ledgerv1.Transaction{Id: "t1", Kind: ledgerv1.TransactionKind_TRANSACTION_KIND_ADJUSTMENT,
		Amount: &moneypb.Money{CurrencyCode: "USD", Units: -5}, IdempotencyKey: "k"}))
	require.JSONEq(t, `{"id":"t1","kind":"TRANSACTION_KIND_ADJUSTMENT","amount":{"currencyCode":"USD","units":"-5"},"idempotencyKey":"k"}`, out.String())
}

func TestExitCodes(t *testing.T) {
	t.Parallel()
	call := func(c codes.Code) error {
		return &callError{service: "ledger", method: "Adjust", status: status.New(c, "m")}
	}
	for _, tc := range []struct {
		err  error
		ran  bool
		want int
	}{
		{errors.New("unknown command"), false, exitUsage},
		{usagef("--reason is required"), true, exitUsage},
		{call(codes.InvalidArgument), true, exitFailed},
		{call(codes.AlreadyExists), true, exitFailed},
		{call(codes.Internal), true, exitFailed},
		{call(codes.Unavailable), true, exitUnreachable},
		{call(codes.DeadlineExceeded), true, exitUnreachable},
		{call(codes.Unauthenticated), true, exitAuth},
		{call(codes.PermissionDenied), true, exitAuth},
		{errors.New("writing the table: broken pipe"), true, exitFailed},
	} {
		require.Equal(t, tc.want, exitCode(tc.err, tc.ran), "%v", tc.err)
	}
	err := &callError{service: "ledger", method: "Adjust", status: status.New(codes.AlreadyExists, "idempotency key reused"), requestID: "r-1"}
	require.EqualError(t, err, "ledger Adjust: AlreadyExists: idempotency key reused (request r-1)")
}

func TestUsageErrorsSendNothing(t *testing.T) {
	t.Parallel()
	// No service listens on the addresses: a usage error is found before any call.
	dead := []string{"--ledger-addr", "127.0.0.1:1", "--pricing-addr", "127.0.0.1:1", "--payments-addr", "127.0.0.1:1"}
	for _, args := range [][]string{
		{"balance"},
		{"balance", "a", "b"},
		{"frobnicate"},
		{"balance", "acme", "--no-such-flag"},
		{"balance", "acme", "-o", "yaml"},
		{"balance", "acme", "--timeout", "0s"},
		{"grant", "acme", "--reason", "x"},
		{"grant", "acme", "--amount", "5"},
		{"adjust", "acme", "--amount", "1.5.0", "--reason", "x"},
		{"prices", "set-model", "m", "--reason", "x"},
		{"prices", "set-model", "m", "--unit", "x=1", "--reason", "x"},
		{"refund", "p", "--amount", "1"},
		{"reviews", "resolve", "id"},
		{"rentals", "start", "i-1", "--org", "acme"},
		{"deliveries", "--status", "lost"},
		{"move-org", "acme"},
		{"move-org", "--to", "b"},
	} {
		r := runCtl(t, nil, append(dead, args...)...)
		require.Equal(t, exitUsage, r.code, "%v: %s", args, r.stderr)
		require.Empty(t, r.stdout, args)
		require.Contains(t, r.stderr, "for usage.", args)
		require.NotContains(t, r.stderr, "idempotency key:", "%v: no key is made for a request that is not sent", args)
	}
}

func TestAddressAndTokenResolution(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	stackPath := filepath.Join(dir, "stack.json")
	require.NoError(t, os.WriteFile(stackPath, []byte(`{"grpc":{"ledger":"localhost:19091"}}`), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "dev-token"), []byte("stack-token\n"), 0o600))
	ledger := endpoints[0]
	pricing := endpoints[1]

	resolve := func(env map[string]string, flags map[string]string) (*cli, string, string, error) {
		c := newCLI(&bytes.Buffer{}, &bytes.Buffer{}, func(k string) string { return env[k] })
		root := c.rootCommand()
		for k, v := range flags {
			require.NoError(t, root.PersistentFlags().Set(k, v))
		}
		addr, err := c.address(ledger)
		if err != nil {
			return c, "", "", err
		}
		tok, err := c.bearer()
		return c, addr, tok, err
	}
	_, addr, tok, err := resolve(nil, nil)
	require.NoError(t, err)
	require.Equal(t, "localhost:9091", addr, "make run's port")
	require.Empty(t, tok)

	_, addr, tok, err = resolve(map[string]string{"TALLY_LEDGER_ADDR": "ledger:1", "TALLY_TOKEN": "env-token"}, nil)
	require.NoError(t, err)
	require.Equal(t, "ledger:1", addr)
	require.Equal(t, "env-token", tok)

	c, addr, tok, err := resolve(map[string]string{"TALLY_LEDGER_ADDR": "ledger:1", "TALLY_STACK": stackPath}, nil)
	require.NoError(t, err)
	require.Equal(t, "localhost:19091", addr, "the stack file over the variable")
	require.Equal(t, "stack-token", tok, "the stack's ops token")
	_, err = c.address(pricing)
	require.ErrorContains(t, err, "names no pricing address")

	_, addr, tok, err = resolve(map[string]string{"TALLY_TOKEN": "env-token"}, map[string]string{"stack": stackPath, "ledger-addr": "flag:1", "token": "flag-token"})
	require.NoError(t, err)
	require.Equal(t, "flag:1", addr, "a flag over everything")
	require.Equal(t, "flag-token", tok)

	_, _, _, err = resolve(nil, map[string]string{"stack": filepath.Join(dir, "missing.json")})
	require.ErrorContains(t, err, "is the stack running?")
}
