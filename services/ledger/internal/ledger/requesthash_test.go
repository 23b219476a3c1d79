package ledger

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// streamedRequestHash is RequestHash as first written, streaming each part into the hash with
// binary.Write: the fingerprints stored with idempotency keys were made this way.
func streamedRequestHash(r *Request) []byte {
	h := sha256.New()
	field := func(s string) {
		_ = binary.Write(h, binary.BigEndian, uint32(len(s))) //nolint:gosec // test strings are short
		h.Write([]byte(s))
	}
	field(string(r.Op))
	field(r.OrgID)
	if r.Usage != nil {
		field("usage")
		field(r.Usage.ModelID)
		_ = binary.Write(h, binary.BigEndian, r.Usage.OccurredAt.UnixNano())
		units := make([]string, 0, len(r.Usage.Quantities))
		for u := range r.Usage.Quantities {
			units = append(units, u)
		}
		sort.Strings(units)
		for _, u := range units {
			field(u)
			field(r.Usage.Quantities[u])
		}
	} else {
		_ = binary.Write(h, binary.BigEndian, int64(r.Amount))
		field(r.Currency)
	}
	field(r.Description)
	field(r.Reason)
	field(r.Reference)
	field(string(r.Source))
	field(r.HoldID)
	_ = binary.Write(h, binary.BigEndian, int64(r.TTL))
	if r.RequireFunds {
		h.Write([]byte{1})
	} else {
		h.Write([]byte{0})
	}
	keys := make([]string, 0, len(r.Metadata))
	for k := range r.Metadata {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		field(k)
		field(r.Metadata[k])
	}
	return h.Sum(nil)
}

// TestRequestHashIsStable requires RequestHash to give, for every kind of request, the
// fingerprint stored with the keys of earlier requests: a retry after an upgrade must still be
// recognised as one, not refused as a reused key.
func TestRequestHashIsStable(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 12, 2, 3, 4, 5, 6, time.UTC)
	cases := []struct {
		name string
		req  Request
	}{
		{"empty", Request{}},
		{"debit", Request{Op: OpDebit, OrgID: "org-1", Amount: 2500, Currency: "USD", Description: "bench call"}},
		{"negative amount, require funds", Request{Op: OpAdjust, OrgID: "org-1", Amount: -7, Currency: "EUR", Reason: "refund", RequireFunds: true}},
		{"credit", Request{Op: OpCredit, OrgID: "o", Amount: 1 << 40, Currency: "USD", Source: SourcePayment, Reference: "pi_1"}},
		{"hold", Request{Op: OpReserve, OrgID: "o", Amount: 10, TTL: 90 * time.Second, HoldID: "h-1"}},
		{"usage", Request{Op: OpDebit, OrgID: "o", Usage: &Usage{ModelID: "llama", OccurredAt: at,
			Quantities: map[string]string{"output_tokens": "350", "input_tokens": "1200"}}}},
		{"usage without time", Request{Op: OpDebit, OrgID: "o", Usage: &Usage{ModelID: "m"}}},
		{"metadata", Request{Op: OpDebit, OrgID: "o", Amount: 1, Metadata: map[string]string{"z": "1", "a": "é", "m": ""}}},
		{"long text", Request{Op: OpDebit, OrgID: "o", Amount: 1, Description: strings.Repeat("d", 2000)}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, hex.EncodeToString(streamedRequestHash(&tc.req)), hex.EncodeToString(RequestHash(&tc.req)))
		})
	}
	// Pinned, in case both were changed together.
	debit := Request{Op: OpDebit, OrgID: "org-1", Amount: 2500, Currency: "USD", Description: "bench call"}
	require.Equal(t, "337d40a567fd466b14e2de9a5890ec19208769c488830bcc4dd8bf1c3dfa6442", hex.EncodeToString(RequestHash(&debit)))
}
