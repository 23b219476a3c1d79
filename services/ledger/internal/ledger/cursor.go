package ledger

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Cursor is a position in the merged event stream of several shards: for each shard, the
// sequence number of the last event delivered from it (absent: none yet). Its text form is
// "name:seq,name:seq" in name order, e.g. "a:120,b:97".
type Cursor map[string]int64

// ParseCursor reads the text form of a Cursor; "" is the start of every shard.
func ParseCursor(s string) (Cursor, error) {
	c := Cursor{}
	if s == "" {
		return c, nil
	}
	for part := range strings.SplitSeq(s, ",") {
		name, seq, ok := strings.Cut(part, ":")
		n, err := strconv.ParseInt(seq, 10, 64)
		if !ok || name == "" || err != nil || n < 0 {
			return nil, fmt.Errorf("%w: after_cursor: %q is not shard:sequence", ErrInvalid, part)
		}
		if _, dup := c[name]; dup {
			return nil, fmt.Errorf("%w: after_cursor: shard %q named twice", ErrInvalid, name)
		}
		c[name] = n
	}
	return c, nil
}

// String is the text form of c.
func (c Cursor) String() string {
	names := make([]string, 0, len(c))
	for n := range c {
		names = append(names, n)
	}
	slices.Sort(names)
	var b strings.Builder
	for i, n := range names {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(n)
		b.WriteByte(':')
		b.WriteString(strconv.FormatInt(c[n], 10))
	}
	return b.String()
}
