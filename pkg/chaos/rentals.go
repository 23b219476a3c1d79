package chaos

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc/status"

	"github.com/tallyhq/tally/pkg/auth"
	instancesv1 "github.com/tallyhq/tally/pkg/gen/tally/instances/v1"
	ledgerv1 "github.com/tallyhq/tally/pkg/gen/tally/ledger/v1"
)

// rentalPeriod is the billing period of the hosts suite's rentals: short, so that a host killed
// or cut off misses several period boundaries.
const rentalPeriod = 2 * time.Second

// rentalClaimLease is how long a scheduler owns the rentals it claimed (the service's minimum):
// a killed host's claims expire after it, and another replica charges what they missed.
const rentalClaimLease = 40 * time.Second

// rentalType is the catalog instance type the rentals run.
const rentalType = "gpu-a10g-small"

// rentalsPerScenario is how many rentals a scenario with rentals starts.
const rentalsPerScenario = 6

// rentalOrg names the organization of rental i; outside the scenario's "<tag>-" names, so that
// the debit checks do not take its charges for debits nobody sent.
func (r *run) rentalOrg(i int) string { return fmt.Sprintf("rent-%s-%02d", r.tag, i) }

func (r *run) rentalID(i int) string { return fmt.Sprintf("%s-vm%02d", r.tag, i) }

// instances returns a client of the instances-metering replicas acting as a backend.
func (r *run) instances() (instancesv1.InstanceMeteringServiceClient, error) {
	tok, err := r.stack.Token(auth.Claims{Subject: "chaos-controller", Roles: []auth.Role{auth.RoleService}})
	if err != nil {
		return nil, err
	}
	conn, err := r.stack.dial("instances", tok)
	if err != nil {
		return nil, err
	}
	return instancesv1.NewInstanceMeteringServiceClient(conn), nil
}

// startRentals grants the rental organizations and starts one rental each.
func (r *run) startRentals(ctx context.Context) error {
	client, err := r.instances()
	if err != nil {
		return err
	}
	for i := range rentalsPerScenario {
		if err := r.grantOrg(ctx, r.rentalOrg(i), grant, ledgerv1.CreditSource_CREDIT_SOURCE_GRANT); err != nil {
			return err
		}
		req := &instancesv1.StartMeteringRequest{InstanceId: r.rentalID(i), OrgId: r.rentalOrg(i), InstanceType: rentalType,
			IdempotencyKey: r.rentalID(i) + "-start"}
		if err := retryCall(ctx, func(cctx context.Context) error { _, err := client.StartMetering(cctx, req); return err }); err != nil {
			return fmt.Errorf("starting rental %s: %w", req.InstanceId, err)
		}
	}
	return nil
}

// retryCall calls f with a deadline until it succeeds or fails with a code that is no outage,
// for at most a minute.
func retryCall(ctx context.Context, f func(context.Context) error) error {
	deadline := time.Now().Add(time.Minute)
	for {
		cctx, cancel := context.WithTimeout(ctx, checkoutTimeout)
		err := f(cctx)
		cancel()
		if err == nil || !retryable(status.Code(err)) || time.Now().After(deadline) {
			return err
		}
		if !pause(ctx, 200*time.Millisecond) {
			return ctx.Err()
		}
	}
}

// checkRentals stops the rentals, waits until every period they ran is charged (a killed host's
// claims expire first), and checks that each period was charged exactly once: the rental's
// count, the ledger's charge keys and the amount all match the periods between start and stop.
func (r *run) checkRentals(ctx context.Context, v *violations, seen map[string]int) error {
	client, err := r.instances()
	if err != nil {
		return err
	}
	var rentals []*instancesv1.Rental
	for i := range rentalsPerScenario {
		req := &instancesv1.StopMeteringRequest{InstanceId: r.rentalID(i)}
		var resp *instancesv1.StopMeteringResponse
		err := retryCall(ctx, func(cctx context.Context) (err error) { resp, err = client.StopMetering(cctx, req); return err })
		if err != nil {
			return fmt.Errorf("stopping rental %s: %w", req.InstanceId, err)
		}
		rentals = append(rentals, resp.GetRental())
	}
	deadline := time.Now().Add(rentalClaimLease + r.timing.Drain)
	for _, rent := range rentals {
		if err := r.checkRental(ctx, client, rent, deadline, v, seen); err != nil {
			return err
		}
	}
	// The surviving replicas must have kept charging while the fault lasted.
	r.mu.Lock()
	from, to := r.faultStart, r.lifted
	r.mu.Unlock()
	during, err := r.count(ctx, `SELECT count(*) FROM instances.charges WHERE instance_id LIKE $1 AND charged_at >= $2 AND charged_at < $3`,
		r.tag+"-vm%", from, to)
	if err != nil {
		return fmt.Errorf("reading the rental charges: %w", err)
	}
	if during == 0 && to.Sub(from) > 2*rentalPeriod {
		r.fail(fmt.Errorf("no rental period was charged during the %.1fs fault", to.Sub(from).Seconds()))
	}
	r.note("%d rentals of %s periods checked; %d periods charged during the fault", len(rentals), rentalPeriod, during)
	r.mu.Lock()
	r.stats.Rentals, r.stats.RentalPeriodsDuring = len(rentals), during
	r.mu.Unlock()
	return nil
}

func (r *run) checkRental(ctx context.Context, client instancesv1.InstanceMeteringServiceClient, rent *instancesv1.Rental,
	deadline time.Time, v *violations, seen map[string]int) error {
	id := rent.GetInstanceId()
	started, stopped := rent.GetStartedAt().AsTime(), rent.GetStoppedAt().AsTime()
	want := int64(stopped.Add(-time.Nanosecond).Sub(started)/rentalPeriod) + 1
	var got *instancesv1.Rental
	for {
		err := retryCall(ctx, func(cctx context.Context) error {
			resp, err := client.GetRental(cctx, &instancesv1.GetRentalRequest{InstanceId: id})
			got = resp.GetRental()
			return err
		})
		if err != nil {
			return fmt.Errorf("reading rental %s: %w", id, err)
		}
		if got.GetPeriodsCharged() >= want || time.Now().After(deadline) {
			break
		}
		if !pause(ctx, 200*time.Millisecond) {
			return ctx.Err()
		}
	}
	keys, total, err := r.rentalCharges(ctx, rent.GetOrgId(), id)
	if err != nil {
		return err
	}
	switch {
	case got.GetPeriodsCharged() < want || int64(len(keys)) < want:
		v.add(&v.lost, seen, "rental period not charged", "%s: %d periods ran, %d charged by the rental, %d in the ledger",
			id, want, got.GetPeriodsCharged(), len(keys))
	case got.GetPeriodsCharged() > want || int64(len(keys)) > want:
		v.add(&v.doubled, seen, "rental charged more periods than ran", "%s: %d periods ran, %d charged by the rental, %d in the ledger",
			id, want, got.GetPeriodsCharged(), len(keys))
	}
	for n := range want {
		if keys[strconv.FormatInt(n, 10)] != 1 && int64(len(keys)) == want {
			v.add(&v.broken, seen, "rental charge keys are not its periods", "%s: no single charge for period %d", id, n)
		}
	}
	if price := got.GetPeriodPrice(); price != nil {
		if each := price.GetUnits()*unit + int64(price.GetNanos()); total != each*int64(len(keys)) {
			v.add(&v.broken, seen, "rental charged another amount", "%s: %s for %d periods of %s", id, nanosText(total), len(keys), nanosText(each))
		}
	}
	return nil
}

// rentalCharges returns the ledger's charges of a rental by period, and their total.
// An organization that moved is read on the shard it lives on: it holds the whole history.
func (r *run) rentalCharges(ctx context.Context, org, id string) (map[string]int, int64, error) {
	sh, _, _, err := r.stack.residentShard(ctx, org)
	if err != nil {
		return nil, 0, fmt.Errorf("reading the charges of %s: %w", id, err)
	}
	cctx, cancel := context.WithTimeout(ctx, queryTimeout)
	defer cancel()
	rows, err := sh.db.Query(cctx, `SELECT idempotency_key, -amount FROM ledger.transactions WHERE org_id = $1 AND kind = 'debit'`, org)
	if err != nil {
		return nil, 0, fmt.Errorf("reading the charges of %s: %w", id, err)
	}
	defer rows.Close()
	keys := map[string]int{}
	var total int64
	for rows.Next() {
		var key string
		var amount int64
		if err := rows.Scan(&key, &amount); err != nil {
			return nil, 0, fmt.Errorf("reading the charges of %s: %w", id, err)
		}
		keys[strings.TrimPrefix(key, "rental:"+id+":")]++
		total += amount
	}
	if err := rows.Err(); err != nil {
		return nil, 0, fmt.Errorf("reading the charges of %s: %w", id, err)
	}
	return keys, total, nil
}
