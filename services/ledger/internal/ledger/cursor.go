package ledger

import (
	"fmt"

	"github.com/tallyhq/tally/pkg/eventcursor"
)

// Cursor is a position in the merged event stream of several shards (pkg/eventcursor): for each
// shard, the sequence number of the last event delivered from it.
type Cursor = eventcursor.Cursor

// ParseCursor reads the text form of a Cursor ("" is the start of every shard); a malformed one
// is ErrInvalid.
func ParseCursor(s string) (Cursor, error) {
	c, err := eventcursor.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("%w: after_cursor: %w", ErrInvalid, err)
	}
	return c, nil
}
