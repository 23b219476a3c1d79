package app

import (
	"context"
	"errors"
	"fmt"
	"time"

	moneypb "google.golang.org/genproto/googleapis/type/money"

	ledgerv1 "github.com/tallyhq/tally/pkg/gen/tally/ledger/v1"
	"github.com/tallyhq/tally/pkg/money"
	"github.com/tallyhq/tally/services/notifications/internal/notify"
)

// Ledger reads balances and events from the ledger's gRPC API: it is both the Balances and the
// Events of the use cases.
type Ledger struct {
	Client ledgerv1.LedgerServiceClient
}

var (
	_ Balances = Ledger{}
	_ Events   = Ledger{}
)

// Balance implements Balances.
func (l Ledger) Balance(ctx context.Context, orgID string) (notify.Balance, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	resp, err := l.Client.GetBalance(ctx, &ledgerv1.GetBalanceRequest{OrgId: orgID})
	if err != nil {
		// %v, not %w: the ledger's status code is not this call's.
		return notify.Balance{}, fmt.Errorf("%w: reading the balance of %s from the ledger: %v", notify.ErrUnavailable, orgID, err)
	}
	bal, err := money.FromProto(resp.GetBalance())
	if err != nil {
		return notify.Balance{}, fmt.Errorf("ledger balance of %s: %w", orgID, err)
	}
	avail, err := money.FromProto(resp.GetAvailable())
	if err != nil {
		return notify.Balance{}, fmt.Errorf("ledger available of %s: %w", orgID, err)
	}
	b := notify.Balance{OrgID: orgID, Currency: bal.Currency, Balance: bal.Nanos, Available: avail.Nanos}
	if resp.GetExpiresAt() != nil {
		b.ExpiresAt = resp.GetExpiresAt().AsTime()
	}
	return b, nil
}

// Watch implements Events.
func (l Ledger) Watch(ctx context.Context, after int64) (EventStream, error) {
	stream, err := l.Client.WatchEvents(ctx, &ledgerv1.WatchEventsRequest{AfterSequence: after})
	if err != nil {
		return nil, err
	}
	return ledgerStream{stream}, nil
}

type ledgerStream struct {
	stream ledgerv1.LedgerService_WatchEventsClient
}

func (s ledgerStream) Recv() (notify.LedgerEvent, error) {
	resp, err := s.stream.Recv()
	if err != nil {
		return notify.LedgerEvent{}, err
	}
	e, err := FromProto(resp.GetEvent())
	if err != nil {
		return notify.LedgerEvent{}, fmt.Errorf("ledger event: %w", err)
	}
	return e, nil
}

var eventKinds = map[ledgerv1.EventKind]notify.EventKind{
	ledgerv1.EventKind_EVENT_KIND_CREDIT:        "credit",
	ledgerv1.EventKind_EVENT_KIND_DEBIT:         "debit",
	ledgerv1.EventKind_EVENT_KIND_ADJUSTMENT:    "adjustment",
	ledgerv1.EventKind_EVENT_KIND_EXPIRY:        "expiry",
	ledgerv1.EventKind_EVENT_KIND_CAPTURE:       "capture",
	ledgerv1.EventKind_EVENT_KIND_HOLD_PLACED:   "hold_placed",
	ledgerv1.EventKind_EVENT_KIND_HOLD_RELEASED: "hold_released",
	ledgerv1.EventKind_EVENT_KIND_HOLD_EXPIRED:  "hold_expired",
}

// FromProto converts a ledger event.
func FromProto(p *ledgerv1.BalanceEvent) (notify.LedgerEvent, error) {
	if p == nil || p.GetSequence() <= 0 || p.GetOrgId() == "" {
		return notify.LedgerEvent{}, errors.New("event without sequence or organization")
	}
	bal, err := money.FromProto(p.GetBalance())
	if err != nil {
		return notify.LedgerEvent{}, fmt.Errorf("event %d balance: %w", p.GetSequence(), err)
	}
	e := notify.LedgerEvent{
		Seq:           p.GetSequence(),
		OrgID:         p.GetOrgId(),
		Kind:          eventKinds[p.GetKind()],
		TransactionID: p.GetTransactionId(),
		Currency:      bal.Currency,
		Balance:       bal.Nanos,
	}
	if e.Kind == "" {
		e.Kind = notify.EventKind(p.GetKind().String())
	}
	if p.GetKind() == ledgerv1.EventKind_EVENT_KIND_CREDIT && p.GetCreditSource() == ledgerv1.CreditSource_CREDIT_SOURCE_GRANT {
		e.Kind = notify.EventGrant // free credits from ops: no "payment succeeded" email
	}
	if e.Available, err = optional(p.GetAvailable()); err != nil {
		return notify.LedgerEvent{}, fmt.Errorf("event %d available: %w", p.GetSequence(), err)
	}
	if e.Amount, err = optional(p.GetAmount()); err != nil {
		return notify.LedgerEvent{}, fmt.Errorf("event %d amount: %w", p.GetSequence(), err)
	}
	if p.GetExpiresAt() != nil {
		e.ExpiresAt = p.GetExpiresAt().AsTime()
	}
	if p.GetOccurredAt() != nil {
		e.OccurredAt = p.GetOccurredAt().AsTime()
	}
	return e, nil
}

func optional(m *moneypb.Money) (money.Nanos, error) {
	if m == nil {
		return 0, nil
	}
	v, err := money.FromProto(m)
	return v.Nanos, err
}
