package ledger

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tallyhq/tally/pkg/ids"
	"github.com/tallyhq/tally/pkg/money"
)

func TestValidate(t *testing.T) {
	t.Parallel()
	ok := func() *Request {
		return &Request{Op: OpDebit, OrgID: "acme", Amount: 5, IdempotencyKey: "k"}
	}
	tests := []struct {
		name   string
		mutate func(*Request)
		valid  bool
	}{
		{"valid debit", func(*Request) {}, true},
		{"empty org", func(r *Request) { r.OrgID = "" }, false},
		{"org with spaces", func(r *Request) { r.OrgID = "a b" }, false},
		{"org too long", func(r *Request) { r.OrgID = strings.Repeat("a", 129) }, false},
		{"org of 128", func(r *Request) { r.OrgID = strings.Repeat("a", 128) }, true},
		{"org starting with a dash (pkg/ids)", func(r *Request) { r.OrgID = "-acme" }, false},
		{"org with ._:@- inside", func(r *Request) { r.OrgID = "a._:@-b" }, true},
		{"key of 255", func(r *Request) { r.IdempotencyKey = strings.Repeat("k", 255) }, true},
		{"zero amount", func(r *Request) { r.Amount = 0 }, false},
		{"negative amount", func(r *Request) { r.Amount = -1 }, false},
		{"empty key", func(r *Request) { r.IdempotencyKey = "" }, false},
		{"key too long", func(r *Request) { r.IdempotencyKey = strings.Repeat("k", 256) }, false},
		{"invalid utf8 description", func(r *Request) { r.Description = "\xff" }, false},
		{"too much metadata", func(r *Request) {
			r.Metadata = map[string]string{}
			for i := range 33 {
				r.Metadata[string(rune('a'+i%26))+strings.Repeat("x", i)] = "v"
			}
		}, false},
		{"adjust without reason", func(r *Request) { r.Op, r.IdempotencyKey = OpAdjust, "" }, false},
		{"negative adjust with reason", func(r *Request) { r.Op, r.Amount, r.Reason = OpAdjust, -5, "fix" }, true},
		{"adjust without key", func(r *Request) { r.Op, r.Reason, r.IdempotencyKey = OpAdjust, "fix", "" }, false},
		{"reserve without ttl", func(r *Request) { r.Op = OpReserve }, false},
		{"reserve ttl too long", func(r *Request) { r.Op, r.TTL = OpReserve, 25*time.Hour }, false},
		{"reserve", func(r *Request) { r.Op, r.TTL = OpReserve, time.Minute }, true},
		{"capture zero releases", func(r *Request) { r.Op, r.OrgID, r.HoldID, r.Amount = OpCapture, "", "h", 0 }, true},
		{"capture without hold", func(r *Request) { r.Op = OpCapture }, false},
		{"unknown source", func(r *Request) { r.Op, r.Source = OpCredit, "gift" }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := ok()
			tt.mutate(r)
			err := r.Validate()
			if tt.valid {
				require.NoError(t, err)
			} else {
				require.ErrorIs(t, err, ErrInvalid)
			}
		})
	}
}

// FuzzValidate drives request validation with arbitrary input: it never panics, every refusal is
// ErrInvalid, and whatever passes respects the invariants the database relies on.
func FuzzValidate(f *testing.F) {
	f.Add("debit", "acme", int64(5), "key", "desc", "", "mk", "mv", int64(0))
	f.Add("credit", "", int64(-1), "", "\xff", "r", "", "", int64(1))
	f.Add("reserve", "o:1", int64(1<<62), strings.Repeat("k", 300), "", "", "k", "v", int64(time.Hour))
	f.Add("adjust", "org", int64(-3), "", "", "", "", "", int64(0))
	f.Fuzz(func(t *testing.T, op, org string, amount int64, key, desc, reason, mk, mv string, ttl int64) {
		r := &Request{Op: Operation(op), OrgID: org, Amount: money.Nanos(amount), IdempotencyKey: key, Description: desc,
			Reason: reason, TTL: time.Duration(ttl), Metadata: map[string]string{mk: mv}, HoldID: key}
		err := r.Validate()
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("refusal is not ErrInvalid: %v", err)
			}
			return
		}
		switch r.Op {
		case OpCredit, OpDebit, OpReserve:
			if r.Amount <= 0 || r.IdempotencyKey == "" {
				t.Fatalf("accepted %s with amount %d key %q", op, amount, key)
			}
		case OpAdjust:
			if r.Amount == 0 || r.Reason == "" || r.IdempotencyKey == "" {
				t.Fatalf("accepted adjust with amount %d reason %q key %q", amount, reason, key)
			}
		}
		if len(r.IdempotencyKey) > ids.MaxKeyLength || len(r.Description) > MaxTextLength {
			t.Fatal("accepted an oversized field")
		}
	})
}
