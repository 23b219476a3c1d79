package chaos

import (
	"context"
	"errors"
	"fmt"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/tallyhq/tally/pkg/auth"
	ledgerv1 "github.com/tallyhq/tally/pkg/gen/tally/ledger/v1"
	"github.com/tallyhq/tally/pkg/money"
)

// moveWithin bounds one MoveOrganization, retried under its key while it answers Unavailable
// (an organization frozen by a move in flight, a usage follower catching up).
const moveWithin = 30 * time.Second

// movedFor is how long a moved organization lives on the other shard before it moves back.
const movedFor = 3 * time.Second

// hotOrgs returns the organizations shard-move moves: the busiest of each kind of traffic, a
// debit organization (debits and Authorize), a payment organization (top-ups) and a rental's
// (its metered charges).
func (r *run) hotOrgs() []string {
	orgs := []string{r.debitOrgs[0]}
	if len(r.debitOrgs) > 1 {
		orgs = append(orgs, r.debitOrgs[1])
	}
	if len(r.payOrgs) > 0 {
		orgs = append(orgs, r.payOrgs[0])
	}
	if r.sc.Rentals {
		orgs = append(orgs, r.rentalOrg(0))
	}
	return orgs
}

func injectShardMove(ctx context.Context, r *run) error {
	s := r.stack
	if !s.ledgerSharded {
		return errors.New("the ledger runs on one shard: nothing to move between")
	}
	// Every move goes through the first host's replica; the others keep their stale maps.
	via := s.Hosts()[0]
	ops, err := s.Token(auth.Claims{Subject: "chaos-ops", Roles: []auth.Role{auth.RoleOps}})
	if err != nil {
		return err
	}
	conn, err := dialReplicas([]string{s.hostAddr(via, "ledger")}, ops)
	if err != nil {
		return err
	}
	defer func() { _ = conn.Close() }()
	client := ledgerv1.NewLedgerServiceClient(conn)
	orgs := r.hotOrgs()
	home := map[string]string{}
	for _, org := range orgs {
		sh, _, _, err := s.residentShard(ctx, org)
		if err != nil {
			return err
		}
		home[org] = sh.name
	}
	at := time.Now()
	for _, org := range orgs {
		if err := r.moveOrg(ctx, client, org, other(home[org]), "out"); err != nil {
			return err
		}
	}
	r.observe("%d organizations moved off their shard through %s's ledger replica under load: %v", len(orgs), via.Name, home)
	if age := time.Since(s.shardedAt); age < shardMapRefresh {
		r.note("the other hosts' replicas last read the shard map %.0fs before (refresh %s): their writes to the moved organizations met the fence", age.Seconds(), shardMapRefresh)
	}
	if err := r.hold(ctx, movedFor); err != nil {
		return err
	}
	for _, org := range orgs {
		if err := r.moveOrg(ctx, client, org, home[org], "back"); err != nil {
			return err
		}
	}
	r.lift()
	return r.hold(ctx, time.Until(at.Add(faultFor)))
}

// other is the shard an organization of shard s moves to.
func other(s string) string {
	if s == shardMain {
		return shardB
	}
	return shardMain
}

// moveOrg moves org to shard to under a key of the run, retrying Unavailable with the same key,
// checks that it lives there afterwards and records how long the move took.
func (r *run) moveOrg(ctx context.Context, client ledgerv1.LedgerServiceClient, org, to, leg string) error {
	key := fmt.Sprintf("chaos-move:%s:%s", org, leg)
	start := time.Now()
	deadline := start.Add(moveWithin)
	var resp *ledgerv1.MoveOrganizationResponse
	for {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		var err error
		resp, err = client.MoveOrganization(cctx, &ledgerv1.MoveOrganizationRequest{OrgId: org, ToShard: to, IdempotencyKey: key})
		cancel()
		if err == nil {
			break
		}
		if c := status.Code(err); (c != codes.Unavailable && c != codes.DeadlineExceeded) || time.Now().After(deadline) {
			return fmt.Errorf("moving %s to shard %s: %w", org, to, err)
		}
		if !pause(ctx, 100*time.Millisecond) {
			return ctx.Err()
		}
	}
	took := time.Since(start)
	sh, _, _, err := r.stack.residentShard(ctx, org)
	if err != nil {
		return fmt.Errorf("after moving %s: %w", org, err)
	}
	if sh.name != to {
		return fmt.Errorf("%s lives on shard %s after its move to %s", org, sh.name, to)
	}
	r.mu.Lock()
	r.stats.Moves = append(r.stats.Moves, took)
	r.mu.Unlock()
	balance, _ := money.FromProto(resp.GetBalance())
	held, _ := money.FromProto(resp.GetHeld())
	r.note("%s moved %s→%s in %.2fs (balance %s, held %s)", org, resp.GetFromShard(), to, took.Seconds(),
		nanosText(int64(balance.Nanos)), nanosText(int64(held.Nanos)))
	return nil
}
