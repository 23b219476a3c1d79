package test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tallyhq/tally/services/payments/internal/payment"
	"github.com/tallyhq/tally/services/payments/internal/stripeevent"
)

func chargeRefunded(t *testing.T, intent string, amount, refunded int64, full bool) []byte {
	t.Helper()
	body, err := stripeevent.EventPayload("", payment.EventChargeRefunded, time.Now(), map[string]any{
		"id": "ch_" + intent, "object": "charge", "payment_intent": intent, "amount": amount, "amount_refunded": refunded,
		"currency": "usd", "refunded": full,
	})
	require.NoError(t, err)
	return body
}
