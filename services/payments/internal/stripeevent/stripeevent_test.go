package stripeevent

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tallyhq/tally/services/payments/internal/payment"
)

const secret = "whsec_unit_test"

func TestVerify(t *testing.T) {
	t.Parallel()
	v, err := NewVerifier(secret, time.Minute)
	require.NoError(t, err)
	body, err := EventPayload("evt_1", payment.EventCheckoutCompleted, time.Now(), map[string]any{
		"id": "cs_1", "object": "checkout.session", "status": "complete", "payment_status": "paid", "amount_total": 1234,
		"currency": "eur", "client_reference_id": "acme", "payment_method_types": []string{"card"},
		// An expanded payment intent is read like an id.
		"payment_intent": map[string]any{"id": "pi_1", "object": "payment_intent"},
		"metadata":       map[string]string{payment.MetaPaymentID: "p-1"},
	})
	require.NoError(t, err)

	ev, err := v.Verify(body, Sign(body, secret, time.Now()))
	require.NoError(t, err)
	require.Equal(t, "evt_1", ev.ID)
	require.Equal(t, payment.Session{ID: "cs_1", Status: "complete", PaymentStatus: "paid", AmountTotal: 1234, Currency: "EUR",
		PaymentIntentID: "pi_1", PaymentMethod: "card", PaymentID: "p-1", OrgID: "acme"}, *ev.Session)

	for _, tc := range []struct {
		name, sig string
		body      []byte
	}{
		{"missing", "", body},
		{"other secret", Sign(body, "whsec_other", time.Now()), body},
		{"too old", Sign(body, secret, time.Now().Add(-2*time.Minute)), body},
		{"dated in the future", Sign(body, secret, time.Now().Add(2*time.Minute)), body},
		{"far in the future", Sign(body, secret, time.Now().Add(30*24*time.Hour)), body},
		{"two timestamps", "t=1," + Sign(body, secret, time.Now()), body},
		{"tampered", Sign(body, secret, time.Now()), append(append([]byte(nil), body[:len(body)-1]...), ' ', '}')},
		{"not a header", "nonsense", body},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := v.Verify(tc.body, tc.sig)
			require.ErrorIs(t, err, payment.ErrBadSignature)
		})
	}

	// A clock slightly ahead of ours, within the tolerance, is accepted.
	_, err = v.Verify(body, Sign(body, secret, time.Now().Add(30*time.Second)))
	require.NoError(t, err)

	// Correctly signed, but holding bytes no field of tally may hold, or not an event at all: the
	// caller's mistake (ErrInvalid), with no library text in the message.
	for name, payload := range map[string]func() []byte{
		"NUL in the event id": func() []byte {
			b, err := EventPayload("evt_\x00", payment.EventCheckoutCompleted, time.Now(), map[string]any{"id": "cs_1", "object": "checkout.session"})
			require.NoError(t, err)
			return b
		},
		"bidi override in the session id": func() []byte {
			b, err := EventPayload("evt_2", payment.EventCheckoutCompleted, time.Now(), map[string]any{"id": "cs_\u202e1", "object": "checkout.session"})
			require.NoError(t, err)
			return b
		},
		"control character in a dispute reason": func() []byte {
			b, err := EventPayload("evt_3", payment.EventDisputeCreated, time.Now(), map[string]any{"id": "dp_1", "object": "dispute", "reason": "fraud\x1b[2J"})
			require.NoError(t, err)
			return b
		},
		"not JSON": func() []byte { return []byte(`{"id": "evt_4", `) },
		"data.object of another shape": func() []byte {
			b, err := EventPayload("evt_5", payment.EventCheckoutCompleted, time.Now(), map[string]any{"id": 12, "object": "checkout.session"})
			require.NoError(t, err)
			return b
		},
	} {
		body := payload()
		_, err := v.Verify(body, Sign(body, secret, time.Now()))
		require.ErrorIs(t, err, payment.ErrInvalid, name)
		require.NotContains(t, err.Error(), "json", name)
		require.NotContains(t, err.Error(), "\x00", name)
	}

	huge := make([]byte, MaxPayloadBytes+1)
	_, err = v.Verify(huge, Sign(huge, secret, time.Now()))
	require.ErrorIs(t, err, payment.ErrInvalid)
}

func TestVerifyDecodesChargesAndDisputes(t *testing.T) {
	t.Parallel()
	v, err := NewVerifier(secret, 0)
	require.NoError(t, err)
	body, err := EventPayload("", payment.EventDisputeCreated, time.Now(), map[string]any{
		"id": "dp_1", "charge": "ch_1", "payment_intent": "pi_1", "amount": 500, "currency": "usd", "reason": "fraudulent",
	})
	require.NoError(t, err)
	ev, err := v.Verify(body, Sign(body, secret, time.Now()))
	require.NoError(t, err)
	require.Equal(t, &payment.Dispute{ID: "dp_1", ChargeID: "ch_1", PaymentIntentID: "pi_1", Amount: 500, Currency: "USD", Reason: "fraudulent"}, ev.Dispute)

	body, err = EventPayload("", payment.EventChargeRefunded, time.Now(), map[string]any{
		"id": "ch_1", "payment_intent": nil, "amount": 500, "amount_refunded": 200, "currency": "usd",
	})
	require.NoError(t, err)
	ev, err = v.Verify(body, Sign(body, secret, time.Now()))
	require.NoError(t, err)
	require.Equal(t, &payment.Charge{ID: "ch_1", Amount: 500, AmountRefunded: 200, Currency: "USD"}, ev.Charge)

	body, err = EventPayload("", payment.EventCheckoutCompleted, time.Now(), "not an object")
	require.NoError(t, err)
	_, err = v.Verify(body, Sign(body, secret, time.Now()))
	require.ErrorIs(t, err, payment.ErrInvalid)
}
