package chaos

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"
)

// HostScenarios returns the faults of the hosts topology (make scale-test), in the order they
// run: a replica of every service on each host, the suite's clients balancing over them.
func HostScenarios() []Scenario {
	return []Scenario{
		{Name: "host-kill", Fault: "the host holding the notifications lease loses power (kill -9 of all its processes) for 5s, then boots",
			Short: true, Payments: true, TopUps: true, Emails: true, Rentals: true, Inject: injectHostKill},
		{Name: "host-partition", Fault: "the host holding the notifications lease is cut off (its link down) for 8s, then reconnected",
			Payments: true, TopUps: true, Emails: true, Rentals: true, Inject: injectHostPartition},
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
			r.note("the notifications lease moved from %s to %s in %.2fs", from.Name, h.Name, time.Since(at).Seconds())
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

// noteReconciliation counts the reconciliation passes of the scenario (each lists the recent
// Checkout Sessions at Stripe): every payments replica reconciles, and the top-up checks hold
// with those passes racing the webhooks and each other.
func (r *run) noteReconciliation() {
	r.mu.Lock()
	from := r.warmStart
	r.mu.Unlock()
	passes := 0
	for _, req := range r.stack.Stripe.Requests() {
		if req.Method == http.MethodGet && req.Path == "/v1/checkout/sessions" && !req.At.Before(from) {
			passes++
		}
	}
	if passes == 0 {
		r.fail(errors.New("no reconciliation pass listed the Checkout Sessions: the race of reconciliations proved nothing"))
		return
	}
	r.note("%d reconciliation passes (every payments replica, each second) raced the webhooks; each credit applied once", passes)
}
