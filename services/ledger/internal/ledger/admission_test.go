package ledger

import (
	"math"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tallyhq/tally/pkg/money"
)

func TestCheckLimit(t *testing.T) {
	t.Parallel()
	max := money.DefaultMaxRequestAmount
	tests := []struct {
		name    string
		req     Request
		wantErr string
	}{
		{"debit at the max", Request{Op: OpDebit, Amount: max}, ""},
		{"debit above the max", Request{Op: OpDebit, Amount: max + 1}, "amount exceeds the per-request maximum of 1000000 (TALLY_MAX_REQUEST_AMOUNT)"},
		{"credit of int64 max", Request{Op: OpCredit, Amount: math.MaxInt64}, "amount exceeds"},
		{"negative adjust at the max", Request{Op: OpAdjust, Amount: -max}, ""},
		{"negative adjust above the max", Request{Op: OpAdjust, Amount: -max - 1}, "amount exceeds"},
		{"adjust of int64 min", Request{Op: OpAdjust, Amount: math.MinInt64}, "amount exceeds"},
		{"capture above the max", Request{Op: OpCapture, Amount: max + 1}, "amount exceeds"},
		{"reserve above the max", Request{Op: OpReserve, Amount: max + 1}, "amount exceeds"},
		{"usage debit priced above the max", Request{Op: OpDebit, Amount: max + 1, Usage: &Usage{ModelID: "m"}}, "the priced usage total exceeds the per-request maximum"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := tt.req.CheckLimit(money.Limit{})
			if tt.wantErr == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, ErrInvalid)
			require.ErrorIs(t, err, money.ErrOverLimit)
			require.ErrorContains(t, err, tt.wantErr)
		})
	}
}

func TestCheckKeyNamespace(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		key     string
		service string
		ok      bool
	}{
		{"ordinary key, any caller", "call-42", "", true},
		{"ordinary key that mentions a prefix later", "my-rental:1", "", true},
		{"rental period from a backend", "rental:i-1:3", "", false},
		{"rental period from payments", "rental:i-1:3", OwnerPayments, false},
		{"rental period from instances-metering", "rental:i-1:3", OwnerInstancesMetering, true},
		{"checkout from a backend", "checkout:cs_test_1", "", false},
		{"checkout from instances-metering", "checkout:cs_test_1", OwnerInstancesMetering, false},
		{"checkout from payments", "checkout:cs_test_1", OwnerPayments, true},
		{"refund from payments", "refund:re_1", OwnerPayments, true},
		{"refund from a backend", "refund:re_1", "", false},
		{"expiry is the ledger's own", "expiry:2026-01-01T00:00:00Z", OwnerPayments, false},
		{"tx is the ledger's own", "tx:0190a0b0-0000-7000-8000-000000000000", OwnerInstancesMetering, false},
		{"a service named like the ledger's namespace", "tx:1", LedgerOwned, false},
		{"just the prefix", "rental:", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := &Request{Op: OpDebit, IdempotencyKey: tt.key, CallerService: tt.service}
			err := r.CheckKeyNamespace()
			if tt.ok {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, ErrInvalid)
			prefix, _, reserved := ReservedKeyNamespace(tt.key)
			require.True(t, reserved)
			require.ErrorContains(t, err, `idempotency_key: the prefix "`+prefix+`" is reserved for tally`)
		})
	}
}
