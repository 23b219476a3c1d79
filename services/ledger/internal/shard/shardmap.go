// Package shard spreads the ledger over PostgreSQL clusters by organization. A Map says which
// shard an organization lives on: rendezvous hashing over the shard names, with an explicit
// override table (kept on the directory shard, the first one configured) so a hot organization
// can move. A Router routes every call of the ledger's API to the app of that shard (one
// app.App per shard, each with its own pool, committer, outbox and cache namespace) and follows
// the residency fence a move leaves behind; Mover moves an organization between shards.
//
// With one shard the ledger does not use the Router at all: the single app serves the API as it
// always has.
package shard

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// Shard is one PostgreSQL cluster of the ledger.
type Shard struct {
	Name string
	URL  string
}

var shardName = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,31}$`)

// ParseShards reads the value of TALLY_LEDGER_SHARDS: whitespace-separated name=url pairs
// ("a=postgres://pg-a/tally b=postgres://pg-b/tally"). Whitespace, not commas, separates them
// because a PostgreSQL URL may list several hosts with commas. Names are 1 to 32 of [a-z0-9-];
// they are hashed, so renaming a shard moves organizations: never rename one.
func ParseShards(v string) ([]Shard, error) {
	var out []Shard
	seen := map[string]bool{}
	for _, f := range strings.Fields(v) {
		name, url, ok := strings.Cut(f, "=")
		switch {
		case !ok || url == "":
			return nil, fmt.Errorf("shard %q: want name=postgres://…", f)
		case !shardName.MatchString(name):
			return nil, fmt.Errorf("shard name %q: want 1 to 32 of [a-z0-9-]", name)
		case seen[name]:
			return nil, fmt.Errorf("shard %q named twice", name)
		}
		seen[name] = true
		out = append(out, Shard{Name: name, URL: url})
	}
	if len(out) == 0 {
		return nil, errors.New("no shard given")
	}
	return out, nil
}

// Map is an immutable shard map: the shard names and the explicit overrides.
type Map struct {
	names     []string
	overrides map[string]string
}

// NewMap returns the map of names (the order is irrelevant to the hash) with overrides
// (org → shard); an override naming an unknown shard is an error.
func NewMap(names []string, overrides map[string]string) (*Map, error) {
	if len(names) == 0 {
		return nil, errors.New("shard map: no shard")
	}
	for org, s := range overrides {
		if !slices.Contains(names, s) {
			return nil, fmt.Errorf("shard map: %s is overridden to unknown shard %q", org, s)
		}
	}
	return &Map{names: slices.Clone(names), overrides: overrides}, nil
}

// Names are the shards of the map, in configuration order.
func (m *Map) Names() []string { return m.names }

// Shard returns the shard org lives on: its override, else its hashed shard.
func (m *Map) Shard(org string) string {
	if s, ok := m.overrides[org]; ok {
		return s
	}
	return m.Hashed(org)
}

// Overridden reports whether org has an explicit override.
func (m *Map) Overridden(org string) bool {
	_, ok := m.overrides[org]
	return ok
}

// WithOverride returns a copy of the map with org on shard s.
func (m *Map) WithOverride(org, s string) *Map {
	o := make(map[string]string, len(m.overrides)+1)
	for k, v := range m.overrides {
		o[k] = v
	}
	o[org] = s
	return &Map{names: m.names, overrides: o}
}

// Hashed is the shard the hash gives org (rendezvous, highest random weight): the shard whose
// score(name, org) is highest, ties to the smaller name. Adding a shard moves only the
// organizations that now score highest on it (about 1/n of them), removing one only its own.
func (m *Map) Hashed(org string) string {
	if len(m.names) == 1 {
		return m.names[0]
	}
	best, bestScore := "", uint64(0)
	for _, n := range m.names {
		s := Score(n, org)
		if best == "" || s > bestScore || (s == bestScore && n < best) {
			best, bestScore = n, s
		}
	}
	return best
}

// Score is the rendezvous weight of org on shard: splitmix64's finalizer over the 64-bit FNV-1a
// of shard, a zero byte and org. Stable across versions and platforms: it decides where money
// lives, so it must never change.
func Score(shard, org string) uint64 {
	const offset, prime = 14695981039346656037, 1099511628211
	h := uint64(offset)
	for i := 0; i < len(shard); i++ {
		h = (h ^ uint64(shard[i])) * prime
	}
	h *= prime // the zero byte between the two
	for i := 0; i < len(org); i++ {
		h = (h ^ uint64(org[i])) * prime
	}
	h ^= h >> 30
	h *= 0xbf58476d1ce4e5b9
	h ^= h >> 27
	h *= 0x94d049bb133111eb
	h ^= h >> 31
	return h
}
