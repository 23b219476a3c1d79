package app

import (
	"context"
	"fmt"
	"strconv"

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

// Watch implements Events. A bare sequence ("42", stored before the ledger had cursors) is a
// position of the one-shard ledger of the time and is resumed with after_sequence: a one-shard
// ledger answers it from exactly there, whatever its shard is named, and every event it sends
// carries the cursor the follower stores next, so the bare form is read once at most. A sharded
// ledger refuses after_sequence (InvalidArgument): the follower then retries and logs rather than
// guess which shard the number belonged to. Any other position is a cursor for WatchFrom.
func (l Ledger) Watch(ctx context.Context, from string) (EventStream, error) {
	var s *ledgerclient.Stream
	var err error
	if seq, bare := bareSequence(from); bare {
		s, err = l.Client.Watch(ctx, seq)
	} else {
		s, err = l.Client.WatchFrom(ctx, from)
	}
	if err != nil {
		return nil, err
	}
	return ledgerStream{s}, nil
}

// bareSequence reports whether pos is a sequence alone, and returns it.
func bareSequence(pos string) (int64, bool) {
	seq, err := strconv.ParseInt(pos, 10, 64)
	return seq, err == nil && seq > 0
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
		Shard: e.Shard, Seq: e.Seq, Cursor: e.Cursor, OrgID: e.OrgID, Kind: kind, TransactionID: e.TransactionID, Currency: e.Currency,
		Amount: e.Amount, Balance: e.Balance, Available: e.Available, ExpiresAt: e.ExpiresAt, OccurredAt: e.OccurredAt,
		SpendLimit: e.SpendLimit,
	}
}
