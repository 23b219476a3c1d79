package app

import (
	"context"
	"fmt"

	"github.com/tallyhq/tally/pkg/ledgerclient"
	"github.com/tallyhq/tally/services/notifications/internal/notify"
)

// Ledger reads balances and events with pkg/ledgerclient: it is both the Balances and the
// Events of the use cases. Its errors are ledgerclient's, which server.CommonErrors maps the same
// way for every service: an outage (our own credentials refused included) is Unavailable, a
// reply that cannot be decoded (ErrBadReply) Internal, never the caller's InvalidArgument.
type Ledger struct {
	Client *ledgerclient.Client
}

var (
	_ Balances = Ledger{}
	_ Events   = Ledger{}
)

// Balance implements Balances.
func (l Ledger) Balance(ctx context.Context, orgID string) (notify.Balance, error) {
	b, err := l.Client.Balance(ctx, orgID)
	if err != nil {
		return notify.Balance{}, fmt.Errorf("reading the balance of %s: %w", orgID, err)
	}
	return notify.Balance{OrgID: b.OrgID, Currency: b.Currency, Balance: b.Balance, Available: b.Available, ExpiresAt: b.ExpiresAt}, nil
}

// Watch implements Events.
func (l Ledger) Watch(ctx context.Context, after int64) (EventStream, error) {
	s, err := l.Client.Watch(ctx, after)
	if err != nil {
		return nil, err
	}
	return ledgerStream{s}, nil
}

type ledgerStream struct {
	s *ledgerclient.Stream
}

func (s ledgerStream) Recv() (notify.LedgerEvent, error) {
	e, err := s.s.Recv()
	if err != nil {
		return notify.LedgerEvent{}, err
	}
	return EventOf(e), nil
}

// EventOf returns the domain view of a ledger event: a credit of free credits is a grant.
func EventOf(e ledgerclient.Event) notify.LedgerEvent {
	kind := notify.EventKind(e.Kind)
	if e.Kind == ledgerclient.EventCredit && e.Grant {
		kind = notify.EventGrant // free credits from ops: no "payment succeeded" email
	}
	return notify.LedgerEvent{
		Seq: e.Seq, OrgID: e.OrgID, Kind: kind, TransactionID: e.TransactionID, Currency: e.Currency,
		Amount: e.Amount, Balance: e.Balance, Available: e.Available, ExpiresAt: e.ExpiresAt, OccurredAt: e.OccurredAt,
		SpendLimit: e.SpendLimit,
	}
}
