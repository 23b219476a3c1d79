package payment

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
)

// SingleShard is the name a one-shard ledger gives its shard (the ledger's shard.Single): a
// sequence stored before the ledger was sharded resumes as the cursor "main:<seq>".
const SingleShard = "main"

// LedgerCursor is a position in the ledger's event stream: the last event sequence reached on
// each shard, in the text form the ledger's WatchEvents takes ("a:3,b:9").
type LedgerCursor map[string]int64

// ParseLedgerCursor reads the text form of a cursor ("" is the beginning of every shard).
func ParseLedgerCursor(s string) (LedgerCursor, error) {
	c := LedgerCursor{}
	if s == "" {
		return c, nil
	}
	for part := range strings.SplitSeq(s, ",") {
		name, seq, ok := strings.Cut(part, ":")
		n, err := strconv.ParseInt(seq, 10, 64)
		if !ok || name == "" || err != nil || n < 0 {
			return nil, fmt.Errorf("%w: ledger cursor: %q is not shard:sequence", ErrInvalid, part)
		}
		if _, dup := c[name]; dup {
			return nil, fmt.Errorf("%w: ledger cursor: shard %q named twice", ErrInvalid, name)
		}
		c[name] = n
	}
	return c, nil
}

// String is the text form of c, its shards sorted by name.
func (c LedgerCursor) String() string {
	var b strings.Builder
	for i, n := range slices.Sorted(maps.Keys(c)) {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(n + ":" + strconv.FormatInt(c[n], 10))
	}
	return b.String()
}
