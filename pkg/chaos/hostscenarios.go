package chaos

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/tallyhq/tally/pkg/localstack"
)

// HostScenarios returns the faults of the hosts topology (make scale-test), in the order they
// run: a replica of every service on each host, the suite's clients balancing over them.
func HostScenarios() []Scenario {
	return []Scenario{
		{Name: "host-kill", Fault: "the host holding the notifications lease loses power (kill -9 of all its processes) for 5s, then boots",
			Short: true, Payments: true, TopUps: true, Emails: true, Rentals: true, Inject: injectHostKill},
		{Name: "host-partition", Fault: "the host holding the notifications lease is cut off (its link down) for 8s, then reconnected",
			Payments: true, TopUps: true, Emails: true, Rentals: true, Inject: injectHostPartition},
		{Name: "redis-failover", Fault: "the Redis Cluster master holding the most balance entries is killed (kill -9); its replica takes over; it rejoins as a replica",
			Payments: true, TopUps: true, Emails: true, Rentals: true, Inject: injectRedisFailover},
		{Name: "postgres-promotion", Fault: "the PostgreSQL primary crashes (immediate stop); its synchronous standby is promoted (pg_ctl promote) 2s later",
			Short: true, Payments: true, TopUps: true, Emails: true, Rentals: true, Inject: injectPostgresPromotion},
		{Name: "shard-move", Fault: "the busiest organizations (debits, top-ups, a rental) move to the other ledger shard through one host's replica, the other hosts' maps stale, and back 3s later",
			Short: true, Payments: true, TopUps: true, Emails: true, Rentals: true, Inject: injectShardMove},
	}
}

// failoverWithin bounds how long the notifications lease may take to reach another host.
const failoverWithin = 15 * time.Second

// partitionFor is how long host-partition keeps the link down: longer than the stores' keepalive
// (storeKeepAlive) needs to end the host's sessions, so the lease fails over during the cut.
const partitionFor = 8 * time.Second

// leaseHost returns the host holding the notifications lease, waiting for one to hold it.
func (r *run) leaseHost(ctx context.Context) (Host, error) {
	deadline := time.Now().Add(failoverWithin)
	for {
		h, ok, err := r.stack.LeaseHolder(ctx)
		if err != nil || ok {
			return h, err
		}
		if time.Now().After(deadline) {
			return Host{}, errors.New("no notifications replica holds the evaluator lease")
		}
		if !pause(ctx, 50*time.Millisecond) {
			return Host{}, ctx.Err()
		}
	}
}

// failover waits until a host other than from holds the notifications lease and notes how long
// that took since at.
func (r *run) failover(ctx context.Context, from Host, at time.Time) error {
	deadline := at.Add(failoverWithin)
	for {
		h, ok, err := r.stack.LeaseHolder(ctx)
		if err != nil {
			return err
		}
		if ok && h != from {
			took := time.Since(at)
			r.note("the notifications lease moved from %s to %s in %.2fs", from.Name, h.Name, took.Seconds())
			r.failedOver("notifications lease", took)
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the notifications lease did not leave %s within %s", from.Name, failoverWithin)
		}
		if !pause(ctx, 50*time.Millisecond) {
			return ctx.Err()
		}
	}
}

func injectHostKill(ctx context.Context, r *run) error {
	h, err := r.leaseHost(ctx)
	if err != nil {
		return err
	}
	at := time.Now()
	if err := r.stack.KillHost(ctx, h); err != nil {
		return err
	}
	for _, name := range hostServiceNames {
		if r.stack.Replica(name, h).Running() {
			return fmt.Errorf("%s still runs on %s after the kill", name, h.Name)
		}
	}
	if err := r.failover(ctx, h, at); err != nil {
		r.fail(err)
	}
	if err := r.hold(ctx, time.Until(at.Add(faultFor))); err != nil {
		return err
	}
	r.observe("%s lost power: its %d processes were killed and stayed down for %.1fs", h.Name, len(hostServiceNames), time.Since(at).Seconds())
	r.lift()
	if err := r.stack.StartHost(ctx, h); err != nil {
		return err
	}
	r.note("%s booted and its replicas were ready %.2fs after the power came back", h.Name, time.Since(r.lifted).Seconds())
	return nil
}

func injectHostPartition(ctx context.Context, r *run) error {
	h, err := r.leaseHost(ctx)
	if err != nil {
		return err
	}
	at := time.Now()
	if err := r.stack.CutHost(ctx, h); err != nil {
		return err
	}
	defer func() { _ = r.stack.MendHost(context.WithoutCancel(ctx), h) }()
	if err := r.unreachable(ctx, r.stack.Replica("ledger", h).Name(), r.stack.hostAddr(h, "ledger")); err != nil {
		return err
	}
	if err := r.failover(ctx, h, at); err != nil {
		r.fail(err)
	}
	if err := r.hold(ctx, time.Until(at.Add(partitionFor))); err != nil {
		return err
	}
	for _, name := range hostServiceNames {
		if !r.stack.Replica(name, h).Running() {
			return fmt.Errorf("%s on %s exited during the partition", name, h.Name)
		}
	}
	r.observe("%s was cut off for %.1fs with its replicas running", h.Name, time.Since(at).Seconds())
	r.lift()
	return r.stack.MendHost(ctx, h)
}

// unreachable checks that addr no longer accepts connections from the root namespace.
func (r *run) unreachable(ctx context.Context, what, addr string) error {
	cctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	conn, err := (&net.Dialer{}).DialContext(cctx, "tcp", addr)
	if err == nil {
		_ = conn.Close()
		return fmt.Errorf("%s (%s) is still reachable after its link went down", what, addr)
	}
	return nil
}

// promoteAfter is how long the primary stays down before its standby is promoted: a failover
// manager's health checks failing (Patroni's ttl, here short).
const promoteAfter = 2 * time.Second

func injectRedisFailover(ctx context.Context, r *run) error {
	c := r.stack.RedisCluster
	masters, err := c.Masters(ctx)
	if err != nil {
		return err
	}
	var victim *localstack.Redis
	most := -1
	for n, keys := range masters {
		if keys > most {
			victim, most = n, keys
		}
	}
	if victim == nil || most == 0 {
		return errors.New("no Redis master holds a balance entry")
	}
	at := time.Now()
	if err := victim.Kill(ctx); err != nil {
		return err
	}
	if err := c.WaitHealthy(ctx); err != nil {
		return fmt.Errorf("the Redis Cluster did not fail over: %w", err)
	}
	took := time.Since(at)
	after, err := c.Masters(ctx)
	if err != nil {
		return err
	}
	if _, still := after[victim]; still || len(after) != len(masters) {
		return fmt.Errorf("after the kill of %s the masters are %d, not %d others", victim.Addr(), len(after), len(masters))
	}
	r.failedOver("Redis replica promoted", took)
	r.observe("Redis master %s (%d keys) was killed; its replica serves its slots %.2fs later", victim.Addr(), most, took.Seconds())
	if err := r.hold(ctx, time.Until(at.Add(faultFor))); err != nil {
		return err
	}
	r.lift()
	if err := victim.Start(ctx); err != nil {
		return err
	}
	if err := c.WaitHealthy(ctx); err != nil {
		return err
	}
	r.note("the old master %s rejoined as a replica %.2fs after its restart", victim.Addr(), time.Since(r.lifted).Seconds())
	return nil
}

func injectPostgresPromotion(ctx context.Context, r *run) error {
	s := r.stack
	if s.PGStandby == nil {
		return errors.New("PostgreSQL has no standby to promote")
	}
	// The promise (no acknowledged commit lost) holds only if the standby is synchronous.
	var state string
	cctx, cancel := context.WithTimeout(ctx, queryTimeout)
	err := s.DB.QueryRow(cctx, `SELECT sync_state FROM pg_stat_replication WHERE application_name = $1`, localstack.StandbyName).Scan(&state)
	cancel()
	if err != nil {
		return fmt.Errorf("reading the standby's replication state: %w", err)
	}
	switch {
	case state != "sync" && !s.cfg.AsyncStandby:
		return fmt.Errorf("the standby replicates %s, not sync: acknowledged commits could be lost", state)
	case s.cfg.AsyncStandby:
		r.note("the standby replicates %s (AsyncStandby): a commit acknowledged before it reached the standby would be lost by the promotion", state)
	}
	if _, err := r.leaseHost(ctx); err != nil {
		return err
	}
	at := time.Now()
	if err := s.PG.StopImmediate(ctx); err != nil {
		return err
	}
	if s.PG.Running() {
		return errors.New("the PostgreSQL primary still runs after its immediate stop")
	}
	if err := r.hold(ctx, promoteAfter); err != nil {
		return err
	}
	if err := s.PromoteStandby(ctx); err != nil {
		return err
	}
	took := time.Since(at)
	r.lift()
	r.failedOver("standby promoted", took)
	r.observe("the PostgreSQL primary crashed; its synchronous standby was promoted %.2fs later", took.Seconds())
	// The lease was a session lock on the old primary: a notifications replica takes it again.
	h, err := r.leaseHost(ctx)
	if err != nil {
		r.fail(fmt.Errorf("after the promotion: %w", err))
	} else {
		r.note("the notifications lease is held again (by %s) %.2fs after the promotion", h.Name, time.Since(r.lifted).Seconds())
	}
	return r.hold(ctx, time.Until(at.Add(faultFor)))
}

// passSlack is how long before the warm-up a pass may have been claimed and still list at Stripe
// after it.
const passSlack = 10 * time.Second

// checkReconciliation checks that the payments replicas ran one reconciliation pass per second
// between them: every listing of the Checkout Sessions at Stripe (one a pass) belongs to a pass
// one replica claimed, and every pass recorded done listed them.
func (r *run) checkReconciliation(ctx context.Context, v *violations, seen map[string]int) error {
	r.mu.Lock()
	from := r.warmStart
	r.mu.Unlock()
	// Stripe's log first: every pass it shows was claimed before.
	listed := 0
	for _, req := range r.stack.Stripe.Requests() {
		if req.Method == http.MethodGet && req.Path == "/v1/checkout/sessions" && req.Status == http.StatusOK && !req.At.Before(from) {
			listed++
		}
	}
	read := time.Now()
	var claimed, early, done, replicas int
	cctx, cancel := context.WithTimeout(ctx, queryTimeout)
	defer cancel()
	// A pass claimed shortly before the warm-up may list after it (a loaded machine can take
	// seconds between a claim and its listing): those count for the check, not in the table.
	err := r.stack.DB.QueryRow(cctx, `SELECT count(*) FILTER (WHERE claimed_at >= $2), count(*) FILTER (WHERE claimed_at < $2),
		count(*) FILTER (WHERE ok AND claimed_at >= $2 AND finished_at < $3), count(DISTINCT replica) FILTER (WHERE claimed_at >= $2)
		FROM payments.reconcile_passes WHERE interval_ms = $4 AND claimed_at >= $1`,
		from.Add(-passSlack), from, read, reconcileInterval.Milliseconds()).Scan(&claimed, &early, &done, &replicas)
	if err != nil {
		return fmt.Errorf("reading the reconciliation passes: %w", err)
	}
	r.mu.Lock()
	r.stats.Passes, r.stats.PassesListed, r.stats.PassReplicas = claimed, listed, replicas
	r.mu.Unlock()
	switch {
	case claimed == 0:
		r.fail(errors.New("no reconciliation pass was claimed: the run-once check proved nothing"))
	case listed > claimed+early:
		v.add(&v.doubled, seen, "reconciliation ran more often than once per pass", "%d listings at Stripe for %d passes claimed (and %d just before)",
			listed, claimed, early)
	case done > listed:
		r.fail(fmt.Errorf("%d reconciliation passes recorded done but only %d listings at Stripe: the count is wrong", done, listed))
	}
	r.note("%d reconciliation passes (one a second, claimed by %d replicas between them), %d listings at Stripe; the top-up checks hold",
		claimed, replicas, listed)
	return nil
}
