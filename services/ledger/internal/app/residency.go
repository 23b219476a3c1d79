package app

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/tallyhq/tally/services/ledger/internal/ledger"
)

// The ledger's part in sharding (internal/shard): one App serves one shard; the router above
// the apps calls these to move an organization and to read the shard map's overrides.

// MoveRecord returns the move of key in direction ("out" or "in") recorded on this shard.
func (a *App) MoveRecord(ctx context.Context, key, direction string) (ledger.Move, bool, error) {
	return a.store.MoveRecord(ctx, key, direction)
}

// FreezeIncoming freezes org's account here, the target of a move (store.FreezeIncoming).
func (a *App) FreezeIncoming(ctx context.Context, org, currency string) error {
	return a.store.FreezeIncoming(ctx, org, currency)
}

// MoveOut moves org out of this shard (store.MoveOut); from and to name the shards.
func (a *App) MoveOut(ctx context.Context, key, org, from, to, actor string) (ledger.Move, error) {
	return a.store.MoveOut(ctx, key, org, from, to, actor)
}

// usageWaitPoll is how often MoveIn checks the source's usage follower.
const usageWaitPoll = 20 * time.Millisecond

// MoveIn copies m's organization from src, the shard it moved out of, and unfreezes it here
// (store.MoveIn), once src's usage follower has counted the organization's events.
func (a *App) MoveIn(ctx context.Context, m ledger.Move, src *App, actor string) error {
	t := time.NewTicker(usageWaitPoll)
	defer t.Stop()
	for {
		ok, err := src.store.UsageCounted(ctx, m.LastEvent)
		if err != nil {
			return fmt.Errorf("waiting for the usage follower of %s: %w", m.From, err)
		}
		if ok {
			break
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for the usage follower of %s: %w", m.From, ctx.Err())
		case <-t.C:
		}
	}
	if err := a.store.MoveIn(ctx, m, src.store, ledger.MovedInEvent(m, a.cfg.Now()), actor); err != nil {
		return err
	}
	a.wake.Notify() // the marker: this replica's watchers of this shard see it at once
	return nil
}

// MoveMarker returns the move whose move-in committed the marker event seq on this shard
// (store.MoveMarker).
func (a *App) MoveMarker(ctx context.Context, seq int64) (ledger.Move, bool, error) {
	return a.store.MoveMarker(ctx, seq)
}

// HoldOrg returns the organization of hold id when the hold is on this shard.
func (a *App) HoldOrg(ctx context.Context, id string) (string, bool, error) {
	return a.store.HoldOrg(ctx, id)
}

// Overrides reads the shard map's overrides (on the directory shard).
func (a *App) Overrides(ctx context.Context) (map[string]string, error) {
	return a.store.Overrides(ctx)
}

// SetOverride sets org's override (on the directory shard); "" removes it.
func (a *App) SetOverride(ctx context.Context, org, shard string) error {
	if org == "" {
		return errors.New("app: an override needs an organization")
	}
	return a.store.SetOverride(ctx, org, shard)
}

// ResidentOrgs calls fn with each page of the organizations resident on this shard (not moved
// away), for pinning them when the shard set changes.
func (a *App) ResidentOrgs(ctx context.Context, fn func([]string) error) error {
	return a.store.ResidentOrgs(ctx, fn)
}

// SetOverrides pins orgs to shard (on the directory shard), leaving existing overrides alone.
func (a *App) SetOverrides(ctx context.Context, orgs []string, shard string) error {
	return a.store.SetOverrides(ctx, orgs, shard)
}
