package ledgerclient

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	ledgerv1 "github.com/tallyhq/tally/pkg/gen/tally/ledger/v1"
	"github.com/tallyhq/tally/pkg/money"
)

// EventKind says what changed an account.
type EventKind string

// The event kinds; an unknown kind of a newer ledger reads as its proto name.
const (
	EventCredit       EventKind = "credit"
	EventDebit        EventKind = "debit"
	EventAdjustment   EventKind = "adjustment"
	EventExpiry       EventKind = "expiry"
	EventCapture      EventKind = "capture"
	EventHoldPlaced   EventKind = "hold_placed"
	EventHoldReleased EventKind = "hold_released"
	EventHoldExpired  EventKind = "hold_expired"
	EventSpendAlert   EventKind = "spend_alert"
)

var eventKinds = map[ledgerv1.EventKind]EventKind{
	ledgerv1.EventKind_EVENT_KIND_CREDIT:        EventCredit,
	ledgerv1.EventKind_EVENT_KIND_DEBIT:         EventDebit,
	ledgerv1.EventKind_EVENT_KIND_ADJUSTMENT:    EventAdjustment,
	ledgerv1.EventKind_EVENT_KIND_EXPIRY:        EventExpiry,
	ledgerv1.EventKind_EVENT_KIND_CAPTURE:       EventCapture,
	ledgerv1.EventKind_EVENT_KIND_HOLD_PLACED:   EventHoldPlaced,
	ledgerv1.EventKind_EVENT_KIND_HOLD_RELEASED: EventHoldReleased,
	ledgerv1.EventKind_EVENT_KIND_HOLD_EXPIRED:  EventHoldExpired,
	ledgerv1.EventKind_EVENT_KIND_SPEND_ALERT:   EventSpendAlert,
}

// Event is one change of an account, in the ledger's commit order.
type Event struct {
	Seq           int64
	OrgID         string
	Kind          EventKind
	Grant         bool // a credit of free credits (CreditSourceGrant), not a payment
	TransactionID string
	HoldID        string
	Currency      string
	Balance       money.Nanos
	Available     money.Nanos
	Amount        money.Nanos
	ExpiresAt     time.Time
	OccurredAt    time.Time
	// SpendLimit is set on spend alerts: the monthly limit whose alert fired (Amount is the
	// month's spending).
	SpendLimit money.Nanos
	// Shard is the ledger shard the event was committed on; Seq is its number there. Cursor is
	// where to resume after this event (WatchFrom): the position reached on every shard.
	Shard  string
	Cursor string
}

// Stream is a Watch in progress.
type Stream struct {
	ctx    context.Context
	stream ledgerv1.LedgerService_WatchEventsClient
}

// Watch streams every event after sequence number after (0: from the beginning) until ctx ends
// or the stream fails. It has no deadline of its own.
func (c *Client) Watch(ctx context.Context, after int64) (*Stream, error) {
	s, err := c.c.WatchEvents(ctx, &ledgerv1.WatchEventsRequest{AfterSequence: after})
	if err != nil {
		return nil, classify(ctx, "watching events", err)
	}
	return &Stream{ctx: ctx, stream: s}, nil
}

// WatchFrom streams every event after cursor (an Event's Cursor; empty: from the beginning of
// every shard) until ctx ends or the stream fails. A sharded ledger is only watched this way:
// it refuses Watch's single sequence number. It has no deadline of its own.
func (c *Client) WatchFrom(ctx context.Context, cursor string) (*Stream, error) {
	s, err := c.c.WatchEvents(ctx, &ledgerv1.WatchEventsRequest{AfterCursor: cursor})
	if err != nil {
		return nil, classify(ctx, "watching events", err)
	}
	return &Stream{ctx: ctx, stream: s}, nil
}

// Recv returns the next event. The ledger ending the stream is ErrUnavailable (a watch never
// ends by itself); an event that cannot be decoded is ErrBadReply.
func (s *Stream) Recv() (Event, error) {
	const op = "watching events"
	r, err := s.stream.Recv()
	if errors.Is(err, io.EOF) {
		return Event{}, &Error{Op: op, Msg: "the ledger ended the stream", Kind: ErrUnavailable}
	}
	if err != nil {
		return Event{}, classify(s.ctx, op, err)
	}
	e, err := eventOf(r.GetEvent())
	if err != nil {
		return Event{}, badReply(op, err)
	}
	return e, nil
}

func eventOf(p *ledgerv1.BalanceEvent) (Event, error) {
	if p == nil || p.GetSequence() <= 0 || p.GetOrgId() == "" {
		return Event{}, errors.New("event without sequence or organization")
	}
	bal, err := decode("balance", p.GetBalance(), true, "")
	if err != nil {
		return Event{}, fmt.Errorf("event %d %s", p.GetSequence(), err.Error())
	}
	e := Event{
		Seq: p.GetSequence(), OrgID: p.GetOrgId(), Kind: eventKinds[p.GetKind()],
		Grant:         p.GetKind() == ledgerv1.EventKind_EVENT_KIND_CREDIT && p.GetCreditSource() == ledgerv1.CreditSource_CREDIT_SOURCE_GRANT,
		TransactionID: p.GetTransactionId(), HoldID: p.GetHoldId(), Currency: bal.Currency, Balance: bal.Nanos,
		ExpiresAt: timeOf(p.GetExpiresAt()), OccurredAt: timeOf(p.GetOccurredAt()),
		Shard: p.GetShard(), Cursor: p.GetCursor(),
	}
	if e.Kind == "" {
		e.Kind = EventKind(p.GetKind().String())
	}
	if e.Available, err = decodeNanos("available", p.GetAvailable(), false, bal.Currency); err != nil {
		return Event{}, fmt.Errorf("event %d %s", p.GetSequence(), err.Error())
	}
	if e.Amount, err = decodeNanos("amount", p.GetAmount(), false, bal.Currency); err != nil {
		return Event{}, fmt.Errorf("event %d %s", p.GetSequence(), err.Error())
	}
	if p.GetSpendLimit() != nil {
		if e.SpendLimit, err = decodeNanos("spend_limit", p.GetSpendLimit(), false, bal.Currency); err != nil {
			return Event{}, fmt.Errorf("event %d %s", p.GetSequence(), err.Error())
		}
	}
	return e, nil
}
