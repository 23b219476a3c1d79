// Package stripeevent verifies Stripe webhook deliveries and reduces their payloads to the domain's
// payment.Event. It also builds signed checkout.session.completed deliveries for the local
// test-mode checkout, so that test mode runs the production code path.
//
// Payload objects are decoded into minimal structs of the fields the service uses rather than into
// stripe-go's full types: an account pinned to another API version must still be understood.
package stripeevent

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/webhook"

	"github.com/tallyhq/tally/pkg/textcheck"
	"github.com/tallyhq/tally/services/payments/internal/payment"
)

// MaxPayloadBytes bounds a webhook body; Stripe events are far smaller.
const MaxPayloadBytes = 512 << 10

// Verifier checks signatures with the endpoint secret and a tolerance window.
type Verifier struct {
	secret    string
	tolerance time.Duration
}

// NewVerifier returns a Verifier; tolerance is how far a signature timestamp may be from now, in
// the past (a replayed delivery) or in the future (a delivery signed ahead of time).
func NewVerifier(secret string, tolerance time.Duration) (*Verifier, error) {
	if secret == "" {
		return nil, fmt.Errorf("stripeevent: webhook secret is required")
	}
	if tolerance <= 0 {
		tolerance = webhook.DefaultTolerance
	}
	return &Verifier{secret: secret, tolerance: tolerance}, nil
}

// Verify checks the Stripe-Signature header over the raw payload and decodes the event. Every
// failure wraps payment.ErrBadSignature or payment.ErrInvalid.
func (v *Verifier) Verify(payload []byte, signature string) (payment.Event, error) {
	if len(payload) > MaxPayloadBytes {
		return payment.Event{}, fmt.Errorf("%w: payload larger than %d bytes", payment.ErrInvalid, MaxPayloadBytes)
	}
	if signature == "" {
		return payment.Event{}, fmt.Errorf("%w: missing Stripe-Signature", payment.ErrBadSignature)
	}
	// stripe-go refuses timestamps older than the tolerance only; one dated ahead would stay
	// valid until then, so it is refused here as well.
	signedAt, err := signatureTime(signature)
	if err != nil {
		return payment.Event{}, err
	}
	if ahead := time.Until(signedAt); ahead > v.tolerance {
		return payment.Event{}, fmt.Errorf("%w: signature timestamp is %s in the future, beyond the tolerance of %s",
			payment.ErrBadSignature, ahead.Truncate(time.Second), v.tolerance)
	}
	ev, err := webhook.ConstructEventWithOptions(payload, signature, v.secret, webhook.ConstructEventOptions{
		Tolerance:                v.tolerance,
		IgnoreAPIVersionMismatch: true,
	})
	switch {
	case errors.Is(err, webhook.ErrNotSigned), errors.Is(err, webhook.ErrInvalidHeader), errors.Is(err, webhook.ErrNoValidSignature),
		errors.Is(err, webhook.ErrTooOld):
		return payment.Event{}, fmt.Errorf("%w: %w", payment.ErrBadSignature, err)
	case err != nil:
		// Correctly signed but not an event; stripe-go's parser text stays out of the answer.
		return payment.Event{}, fmt.Errorf("%w: the payload is not a Stripe event", payment.ErrInvalid)
	}
	out, err := decode(ev)
	if err != nil {
		return payment.Event{}, err
	}
	if err := checkText(out); err != nil {
		return payment.Event{}, err
	}
	return out, nil
}

// maxStripeID bounds the ids read from an event (Stripe's are far shorter).
const maxStripeID = 255

// checkText holds the fields tally reads from a signed event to the platform's text rule
// (pkg/textcheck), so a NUL or a control character never reaches PostgreSQL: ids are printable
// ASCII, a dispute reason printable text.
func checkText(ev payment.Event) error {
	ids := []struct{ field, v string }{{"id", ev.ID}, {"type", ev.Type}}
	var reason string
	if s := ev.Session; s != nil {
		ids = append(ids, []struct{ field, v string }{{"data.object.id", s.ID}, {"data.object.status", s.Status},
			{"data.object.payment_status", s.PaymentStatus}, {"data.object.currency", s.Currency},
			{"data.object.payment_intent", s.PaymentIntentID}, {"data.object.payment_method_types", s.PaymentMethod},
			{"data.object.metadata", s.PaymentID}, {"data.object.metadata", s.OrgID}, {"data.object.mode", s.Mode},
			{"data.object.setup_intent", s.SetupIntentID}}...)
	}
	if in := ev.Intent; in != nil {
		ids = append(ids, []struct{ field, v string }{{"data.object.id", in.ID}, {"data.object.status", in.Status},
			{"data.object.currency", in.Currency}, {"data.object.metadata", in.PaymentID}, {"data.object.metadata", in.OrgID},
			{"data.object.last_payment_error.code", in.FailureCode}}...)
		reason = in.FailureMessage
	}
	if c := ev.Charge; c != nil {
		ids = append(ids, []struct{ field, v string }{{"data.object.id", c.ID}, {"data.object.payment_intent", c.PaymentIntentID},
			{"data.object.currency", c.Currency}}...)
	}
	if d := ev.Dispute; d != nil {
		ids = append(ids, []struct{ field, v string }{{"data.object.id", d.ID}, {"data.object.charge", d.ChargeID},
			{"data.object.payment_intent", d.PaymentIntentID}, {"data.object.currency", d.Currency}}...)
		reason = d.Reason
	}
	for _, f := range ids {
		if err := textcheck.Identifier(f.field, f.v, maxStripeID); err != nil {
			return fmt.Errorf("%w: %w", payment.ErrInvalid, err)
		}
	}
	if err := textcheck.FreeText("data.object.reason", reason, 1000); err != nil {
		return fmt.Errorf("%w: %w", payment.ErrInvalid, err)
	}
	return nil
}

// signatureTime reads the timestamp of a Stripe-Signature header ("t=1700000000,v1=…"), which
// must carry exactly one.
func signatureTime(header string) (time.Time, error) {
	var at time.Time
	n := 0
	for pair := range strings.SplitSeq(header, ",") {
		k, v, ok := strings.Cut(pair, "=")
		if !ok || k != "t" {
			continue
		}
		secs, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return time.Time{}, fmt.Errorf("%w: the signature timestamp is not a number", payment.ErrBadSignature)
		}
		at, n = time.Unix(secs, 0), n+1
	}
	if n != 1 {
		return time.Time{}, fmt.Errorf("%w: the signature header must carry exactly one timestamp", payment.ErrBadSignature)
	}
	return at, nil
}

// expandable is a Stripe field holding either an id or the expanded object.
type expandable string

func (e *expandable) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case bytes.Equal(b, []byte("null")):
		*e = ""
	case len(b) > 0 && b[0] == '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*e = expandable(s)
	default:
		var obj struct {
			ID string `json:"id"`
		}
		if err := json.Unmarshal(b, &obj); err != nil {
			return err
		}
		*e = expandable(obj.ID)
	}
	return nil
}

type sessionObject struct {
	ID                 string            `json:"id"`
	Status             string            `json:"status"`
	PaymentStatus      string            `json:"payment_status"`
	AmountTotal        int64             `json:"amount_total"`
	Currency           string            `json:"currency"`
	PaymentIntent      expandable        `json:"payment_intent"`
	PaymentMethodTypes []string          `json:"payment_method_types"`
	ClientReferenceID  string            `json:"client_reference_id"`
	Metadata           map[string]string `json:"metadata"`
	Created            int64             `json:"created"`
	Mode               string            `json:"mode"`
	SetupIntent        expandable        `json:"setup_intent"`
}

type intentObject struct {
	ID             string            `json:"id"`
	Status         string            `json:"status"`
	AmountReceived int64             `json:"amount_received"`
	Currency       string            `json:"currency"`
	Metadata       map[string]string `json:"metadata"`
	LastError      *struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"last_payment_error"`
}

type chargeObject struct {
	ID             string     `json:"id"`
	PaymentIntent  expandable `json:"payment_intent"`
	Amount         int64      `json:"amount"`
	AmountRefunded int64      `json:"amount_refunded"`
	Currency       string     `json:"currency"`
	Refunded       bool       `json:"refunded"`
}

type disputeObject struct {
	ID            string     `json:"id"`
	Charge        expandable `json:"charge"`
	PaymentIntent expandable `json:"payment_intent"`
	Amount        int64      `json:"amount"`
	Currency      string     `json:"currency"`
	Reason        string     `json:"reason"`
}

func decode(ev stripe.Event) (payment.Event, error) {
	if ev.ID == "" {
		return payment.Event{}, fmt.Errorf("%w: event without id", payment.ErrInvalid)
	}
	out := payment.Event{ID: ev.ID, Type: string(ev.Type), Created: time.Unix(ev.Created, 0).UTC()}
	var raw json.RawMessage
	if ev.Data != nil {
		raw = ev.Data.Raw
	}
	switch out.Type {
	case payment.EventCheckoutCompleted, payment.EventCheckoutAsyncSucceeded, payment.EventCheckoutAsyncFailed, payment.EventCheckoutExpired:
		var o sessionObject
		if err := unmarshal(raw, &o); err != nil {
			return payment.Event{}, err
		}
		s := sessionFromObject(o)
		out.Session = &s
	case payment.EventIntentSucceeded, payment.EventIntentFailed:
		var o intentObject
		if err := unmarshal(raw, &o); err != nil {
			return payment.Event{}, err
		}
		out.Intent = &payment.Intent{ID: o.ID, Status: o.Status, AmountReceived: o.AmountReceived, Currency: strings.ToUpper(o.Currency),
			PaymentID: o.Metadata[payment.MetaPaymentID], OrgID: o.Metadata[payment.MetaOrgID]}
		if o.LastError != nil {
			out.Intent.FailureCode, out.Intent.FailureMessage = o.LastError.Code, o.LastError.Message
		}
	case payment.EventChargeRefunded:
		var o chargeObject
		if err := unmarshal(raw, &o); err != nil {
			return payment.Event{}, err
		}
		out.Charge = &payment.Charge{
			ID: o.ID, PaymentIntentID: string(o.PaymentIntent), Amount: o.Amount, AmountRefunded: o.AmountRefunded,
			Currency: strings.ToUpper(o.Currency), Refunded: o.Refunded,
		}
	case payment.EventDisputeCreated:
		var o disputeObject
		if err := unmarshal(raw, &o); err != nil {
			return payment.Event{}, err
		}
		out.Dispute = &payment.Dispute{
			ID: o.ID, ChargeID: string(o.Charge), PaymentIntentID: string(o.PaymentIntent), Amount: o.Amount,
			Currency: strings.ToUpper(o.Currency), Reason: o.Reason,
		}
	}
	return out, nil
}

func unmarshal(raw json.RawMessage, v any) error {
	if len(raw) == 0 {
		return fmt.Errorf("%w: event without data.object", payment.ErrInvalid)
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return fmt.Errorf("%w: data.object does not have the shape of its event type", payment.ErrInvalid)
	}
	return nil
}

// sessionFromObject reduces a decoded Checkout Session to the domain's view.
func sessionFromObject(o sessionObject) payment.Session {
	method := ""
	if len(o.PaymentMethodTypes) > 0 {
		method = o.PaymentMethodTypes[0]
	}
	s := payment.Session{
		ID: o.ID, Status: o.Status, PaymentStatus: o.PaymentStatus, AmountTotal: o.AmountTotal,
		Currency: strings.ToUpper(o.Currency), PaymentIntentID: string(o.PaymentIntent), PaymentMethod: method,
		PaymentID: o.Metadata[payment.MetaPaymentID], OrgID: o.Metadata[payment.MetaOrgID],
		Mode: o.Mode, SetupIntentID: string(o.SetupIntent),
	}
	if s.OrgID == "" {
		s.OrgID = o.ClientReferenceID
	}
	if o.Created > 0 {
		s.Created = time.Unix(o.Created, 0).UTC()
	}
	return s
}

// SessionFromStripe reduces a stripe-go Checkout Session (from the API) to the domain's view.
func SessionFromStripe(cs *stripe.CheckoutSession) payment.Session {
	o := sessionObject{
		ID: cs.ID, Status: string(cs.Status), PaymentStatus: string(cs.PaymentStatus), AmountTotal: cs.AmountTotal,
		Currency: string(cs.Currency), PaymentMethodTypes: cs.PaymentMethodTypes, ClientReferenceID: cs.ClientReferenceID,
		Metadata: cs.Metadata, Created: cs.Created, Mode: string(cs.Mode),
	}
	if cs.SetupIntent != nil {
		o.SetupIntent = expandable(cs.SetupIntent.ID)
	}
	if cs.PaymentIntent != nil {
		o.PaymentIntent = expandable(cs.PaymentIntent.ID)
	}
	return sessionFromObject(o)
}

// SessionObject is the JSON shape of a Checkout Session inside an event, for building deliveries.
type SessionObject struct {
	ID                 string            `json:"id"`
	Object             string            `json:"object"`
	Status             string            `json:"status"`
	PaymentStatus      string            `json:"payment_status"`
	Mode               string            `json:"mode"`
	AmountTotal        int64             `json:"amount_total"`
	Currency           string            `json:"currency"`
	PaymentIntent      string            `json:"payment_intent,omitempty"`
	SetupIntent        string            `json:"setup_intent,omitempty"`
	PaymentMethodTypes []string          `json:"payment_method_types"`
	ClientReferenceID  string            `json:"client_reference_id"`
	Metadata           map[string]string `json:"metadata"`
	Created            int64             `json:"created"`
	Livemode           bool              `json:"livemode"`
}

// EventPayload builds the JSON body of a Stripe event of type typ carrying object, as Stripe
// would send it. An empty id gets a random "evt_test_" one.
func EventPayload(id, typ string, created time.Time, object any) ([]byte, error) {
	if id == "" {
		b := make([]byte, 12)
		if _, err := rand.Read(b); err != nil {
			return nil, fmt.Errorf("generating event id: %w", err)
		}
		id = "evt_test_" + hex.EncodeToString(b)
	}
	obj, err := json.Marshal(object)
	if err != nil {
		return nil, fmt.Errorf("encoding event object: %w", err)
	}
	body, err := json.Marshal(map[string]any{
		"id": id, "object": "event", "type": typ, "api_version": stripe.APIVersion, "created": created.Unix(),
		"livemode": false, "pending_webhooks": 1, "data": map[string]json.RawMessage{"object": obj},
	})
	if err != nil {
		return nil, fmt.Errorf("encoding event: %w", err)
	}
	return body, nil
}

// Sign returns the Stripe-Signature header of payload signed with secret at time at.
func Sign(payload []byte, secret string, at time.Time) string {
	return webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: payload, Secret: secret, Timestamp: at}).Header
}
