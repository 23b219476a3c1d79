package ledger

import (
	"errors"
	"fmt"
	"time"

	"github.com/tallyhq/tally/pkg/money"
)

// ErrMoved is a write refused because the organization lives on another shard now: the
// router retries it there (MovedError names where). ErrFrozen is a write refused while the
// organization is being moved in: retry shortly.
var (
	ErrMoved  = errors.New("the organization moved to another ledger shard")
	ErrFrozen = errors.New("the organization is being moved between ledger shards")
)

// MovedError is ErrMoved with the shard the organization moved to.
type MovedError struct{ Shard string }

func (e *MovedError) Error() string { return fmt.Sprintf("%s (%s)", ErrMoved.Error(), e.Shard) }

// Is makes errors.Is(err, ErrMoved) true.
func (e *MovedError) Is(target error) bool { return target == ErrMoved }

// Resident returns nil when the account may be written on this shard: a MovedError when its
// organization moved away (the fence a move leaves, read under the write's own row lock),
// ErrFrozen while it moves in.
func (a *Account) Resident() error {
	switch {
	case a.MovedTo != "":
		return &MovedError{Shard: a.MovedTo}
	case a.Frozen:
		return ErrFrozen
	}
	return nil
}

// Move is one move of an organization between shards, as recorded on both (see the store's
// residency.go): its balance, held amount and expiry when it left the source.
type Move struct {
	Key, OrgID, From, To, Currency string
	Amount, Held                   money.Nanos
	ExpiresAt                      time.Time
	// LastEvent is the organization's newest outbox event on the source when it moved out.
	LastEvent int64
}

// EventMovedIn is the outbox event a move-in commits on the target: the marker of where, in the
// target's event order, the organization's events there begin. It is internal to the ledger —
// the merged WatchEvents stream holds the target's events behind it until the source's stream has
// passed the move's LastEvent (internal/shard), and never sends it to a watcher.
const EventMovedIn EventKind = "moved_in"

// MovedInEvent is the marker event of m's move-in, committed at at: the organization's balance
// and available amount as they arrive.
func MovedInEvent(m Move, at time.Time) Event {
	return Event{
		OrgID: m.OrgID, Kind: EventMovedIn, Balance: m.Amount, Available: m.Amount - m.Held,
		Currency: m.Currency, ExpiresAt: m.ExpiresAt, OccurredAt: at,
	}
}
