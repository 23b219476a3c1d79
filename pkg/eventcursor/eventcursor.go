// Package eventcursor is the position in the ledger's merged event stream (WatchEvents'
// after_cursor and each event's cursor): for each shard, the sequence number of the last event
// delivered from it. The ledger writes it and its consumers store and read it back.
package eventcursor

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
)

// Cursor maps a shard's name to the sequence of the last event reached on it (absent: none
// yet). Its text form is "name:seq,name:seq" in name order, e.g. "a:120,b:97".
type Cursor map[string]int64

// Parse reads the text form of a Cursor; "" is the start of every shard.
func Parse(s string) (Cursor, error) {
	c := Cursor{}
	if s == "" {
		return c, nil
	}
	for part := range strings.SplitSeq(s, ",") {
		name, seq, ok := strings.Cut(part, ":")
		n, err := strconv.ParseInt(seq, 10, 64)
		if !ok || name == "" || err != nil || n < 0 {
			return nil, fmt.Errorf("%q is not shard:sequence", part)
		}
		if _, dup := c[name]; dup {
			return nil, fmt.Errorf("shard %q named twice", name)
		}
		c[name] = n
	}
	return c, nil
}

// String is the text form of c, its shards sorted by name.
func (c Cursor) String() string {
	var b strings.Builder
	for i, n := range slices.Sorted(maps.Keys(c)) {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(n + ":" + strconv.FormatInt(c[n], 10))
	}
	return b.String()
}
