package shard

import (
	"context"
	"errors"
	"fmt"

	"github.com/tallyhq/tally/pkg/ids"
	"github.com/tallyhq/tally/services/ledger/internal/ledger"
)

// MoveResult is what a move did.
type MoveResult struct {
	Move ledger.Move
	// Replayed is true when the key's move had completed before.
	Replayed bool
}

// Move moves org to shard to, idempotently by key: freeze on the target, move out on the source
// (the fence), copy and move in on the target, then flip the override on the directory (see the
// store's residency.go). Interrupted at any step, the same call with the same key finishes it;
// meanwhile the organization's writes answer Unavailable (frozen) and nothing is lost or
// doubled. actor is recorded on the move's adjustments.
func (r *Router) Move(ctx context.Context, org, to, key, actor string) (MoveResult, error) {
	if err := ledger.Invalid(ids.OrgID(org)); err != nil {
		return MoveResult{}, err
	}
	if err := ledger.Invalid(ids.IdempotencyKey("idempotency_key", key)); err != nil {
		return MoveResult{}, err
	}
	target := r.apps[to]
	if target == nil {
		return MoveResult{}, fmt.Errorf("%w: to_shard: unknown shard %q", ledger.ErrInvalid, to)
	}
	if m, done, err := target.MoveRecord(ctx, key, "in"); err != nil {
		return MoveResult{}, err
	} else if done {
		if m.OrgID != org || m.To != to {
			return MoveResult{}, ledger.ErrIdempotencyConflict
		}
		return MoveResult{Move: m, Replayed: true}, r.flip(ctx, org, to)
	}
	m, started, err := r.startedMove(ctx, key)
	if err != nil {
		return MoveResult{}, err
	}
	if started && (m.OrgID != org || m.To != to) {
		return MoveResult{}, ledger.ErrIdempotencyConflict
	}
	if !started {
		if m, err = r.moveOut(ctx, org, to, key, actor); err != nil {
			return MoveResult{}, err
		}
	}
	if err := target.MoveIn(ctx, m, r.apps[m.From], actor); err != nil {
		return MoveResult{}, fmt.Errorf("moving %s into %s: %w", org, to, err)
	}
	if err := r.flip(ctx, org, to); err != nil {
		return MoveResult{}, err
	}
	r.cfg.Logger.InfoContext(ctx, "organization moved between ledger shards", "org_id", org, "from", m.From, "to", to,
		"balance", m.Amount.String(), "held", m.Held.String(), "actor", actor)
	return MoveResult{Move: m}, nil
}

// startedMove finds the source's record of a move of key that moved out but did not move in.
func (r *Router) startedMove(ctx context.Context, key string) (ledger.Move, bool, error) {
	for _, n := range r.names {
		m, ok, err := r.apps[n].MoveRecord(ctx, key, "out")
		if err != nil || ok {
			return m, ok, err
		}
	}
	return ledger.Move{}, false, nil
}

// moveOut freezes org on the target and moves it out of the shard it lives on.
func (r *Router) moveOut(ctx context.Context, org, to, key, actor string) (ledger.Move, error) {
	if err := r.Refresh(ctx); err != nil {
		return ledger.Move{}, err
	}
	from := r.m.Load().Shard(org)
	src := r.apps[from]
	acct, err := src.Balance(ctx, org)
	if err != nil {
		return ledger.Move{}, err
	}
	var moved *ledger.MovedError
	if err := acct.Resident(); errors.As(err, &moved) {
		// The directory has not caught up with a move (its flip failed): finish that one first.
		return ledger.Move{}, fmt.Errorf("%w: %s moved to %s, but the shard map still says %s: retry that move with its key",
			ledger.ErrFrozen, org, moved.Shard, from)
	} else if err != nil {
		return ledger.Move{}, err
	}
	if from == to {
		return ledger.Move{}, fmt.Errorf("%w: %s already lives on shard %s", ledger.ErrInvalid, org, to)
	}
	if err := r.apps[to].FreezeIncoming(ctx, org, acct.Currency); err != nil {
		return ledger.Move{}, fmt.Errorf("freezing %s on %s: %w", org, to, err)
	}
	m, err := src.MoveOut(ctx, key, org, from, to, actor)
	if err != nil {
		return ledger.Move{}, fmt.Errorf("moving %s out of %s: %w", org, from, err)
	}
	return m, nil
}

// flip records org on shard to in the directory (no override when the hash puts it there) and in
// this router's map.
func (r *Router) flip(ctx context.Context, org, to string) error {
	s := to
	if r.m.Load().Hashed(org) == to {
		s = ""
	}
	if err := r.dir.SetOverride(ctx, org, s); err != nil {
		return err
	}
	r.learn(org, to)
	return nil
}

// PinResidents writes an override for every organization living on a shard other than the one
// the hash now gives it: run when shards are added (`ledger migrate` does), so an organization
// already written somewhere is never opened a second time where the new map would put it.
func (r *Router) PinResidents(ctx context.Context) (int, error) {
	if r.one != nil {
		return 0, nil
	}
	if err := r.Refresh(ctx); err != nil {
		return 0, err
	}
	m := r.m.Load()
	pinned := 0
	for _, n := range r.names {
		err := r.apps[n].ResidentOrgs(ctx, func(orgs []string) error {
			var pin []string
			for _, o := range orgs {
				if !m.Overridden(o) && m.Hashed(o) != n {
					pin = append(pin, o)
				}
			}
			if len(pin) == 0 {
				return nil
			}
			pinned += len(pin)
			return r.dir.SetOverrides(ctx, pin, n)
		})
		if err != nil {
			return pinned, fmt.Errorf("pinning the organizations of shard %s: %w", n, err)
		}
	}
	return pinned, r.Refresh(ctx)
}
