package payment

import (
	"fmt"

	"github.com/tallyhq/tally/pkg/eventcursor"
)

// SingleShard is the name a one-shard ledger gives its shard (the ledger's shard.Single): a
// sequence stored before the ledger was sharded resumes as the cursor "main:<seq>".
const SingleShard = "main"

// LedgerCursor is a position in the ledger's event stream (pkg/eventcursor): the last event
// sequence reached on each shard, in the text form the ledger's WatchEvents takes ("a:3,b:9").
type LedgerCursor = eventcursor.Cursor

// ParseLedgerCursor reads the text form of a cursor ("" is the beginning of every shard); a
// malformed one is ErrInvalid.
func ParseLedgerCursor(s string) (LedgerCursor, error) {
	c, err := eventcursor.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("%w: ledger cursor: %w", ErrInvalid, err)
	}
	return c, nil
}
