package chaos

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	ledgerv1 "github.com/tallyhq/tally/pkg/gen/tally/ledger/v1"
	notificationsv1 "github.com/tallyhq/tally/pkg/gen/tally/notifications/v1"
	paymentsv1 "github.com/tallyhq/tally/pkg/gen/tally/payments/v1"
)

// Timing is the phases of a scenario.
type Timing struct {
	// Warm is the traffic before the fault (the normal rate is measured there).
	Warm time.Duration
	// Recover is the traffic after the fault is lifted.
	Recover time.Duration
	// Drain bounds how long in-flight calls, webhooks and emails may take to finish afterwards.
	Drain time.Duration
}

// grant is what every debit organization starts with: enough that the traffic of a scenario
// never drives it below zero, so that Authorize answers depend on the exact amount.
const grant = 10_000 * unit

// run is one scenario being executed.
type run struct {
	stack  *Stack
	sc     Scenario
	tag    string
	load   LoadConfig
	timing Timing
	grace  time.Duration
	short  bool
	rec    *recorder
	grant  int64

	debitOrgs, payOrgs, mailOrgs []string

	stopNew    atomic.Bool
	debitCount atomic.Int64
	topUpCount atomic.Int64
	// active is the organizations new debits go to (all of debitOrgs unless a scenario leaves
	// some untouched).
	active atomic.Pointer[[]string]
	// loadUntil stops new traffic at the latest; resolveUntil bounds the retries of debits and
	// webhooks (unix nanos: the drain moves it closer).
	loadUntil    time.Time
	resolveUntil atomic.Int64
	// hooks are the webhook deliveries in progress.
	hooks sync.WaitGroup

	mu          sync.Mutex
	members     map[string]paymentsv1.PaymentsServiceClient
	warmStart   time.Time
	faultStart  time.Time
	lifted      time.Time
	firstAck    time.Time // first debit acknowledged after lifted
	firstHook   time.Time // first webhook acknowledged after lifted
	recoveredAt time.Time // the recovery signal of RecoverRefund and RecoverEmail
	refunds     []*refundCall
	// stats is what the hosts topology's table shows beyond the debits.
	stats    HostStats
	notes    []string
	failures []error
	observed bool
}

// refundCall is one RefundPayment the scenario made.
type refundCall struct {
	org, paymentID, key string
	amount              int64
	code                codes.Code
}

func (r *run) note(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.notes = append(r.notes, fmt.Sprintf(format, args...))
}

// failedOver records what took over from the failed part, and how long after the fault that
// took (the first one recorded wins).
func (r *run) failedOver(what string, took time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stats.Failover == "" {
		r.stats.Failover, r.stats.FailoverTook = what, took
	}
}

// observe records that the fault took effect, as seen by how.
func (r *run) observe(format string, args ...any) {
	r.note("fault took effect: "+format, args...)
	r.mu.Lock()
	r.observed = true
	r.mu.Unlock()
}

func (r *run) fail(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.failures = append(r.failures, err)
}

// lift marks the moment the fault ends; recovery is measured from it.
func (r *run) lift() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.lifted.IsZero() {
		r.lifted = time.Now()
	}
}

func (r *run) noteAck(at time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.lifted.IsZero() && r.firstAck.IsZero() && at.After(r.lifted) {
		r.firstAck = at
	}
}

func (r *run) noteHook(at time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.lifted.IsZero() && r.firstHook.IsZero() && at.After(r.lifted) {
		r.firstHook = at
	}
}

// setActive sends new debits to orgs only.
func (r *run) setActive(orgs []string) { r.active.Store(&orgs) }

// pickOrg returns an organization for a new debit.
func (r *run) pickOrg() string {
	orgs := *r.active.Load()
	return orgs[rand.IntN(len(orgs))]
}

// pastResolve reports whether the time for retries is over.
func (r *run) pastResolve() bool { return time.Now().UnixNano() > r.resolveUntil.Load() }

// payAsync has Stripe pay t in the background (the drain waits for it).
func (r *run) payAsync(ctx context.Context, t *topUp) {
	r.hooks.Go(func() { r.pay(ctx, &http.Client{}, t) })
}

// hold lets the traffic run for d.
func (r *run) hold(ctx context.Context, d time.Duration) error {
	if !pause(ctx, d) {
		return ctx.Err()
	}
	return nil
}

func (r *run) member(org string) (paymentsv1.PaymentsServiceClient, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if c, ok := r.members[org]; ok {
		return c, nil
	}
	c, err := r.stack.MemberPayments(org)
	if err != nil {
		return nil, err
	}
	r.members[org] = c
	return c, nil
}

// execute runs the scenario: setup, traffic, warm-up, fault, recovery, drain, quiet probes and
// the checks.
func execute(ctx context.Context, stack *Stack, sc Scenario, tag string, short bool, load LoadConfig, timing Timing, grace time.Duration) Result {
	start := time.Now()
	r := &run{stack: stack, sc: sc, tag: tag, short: short, load: load, timing: timing, grace: grace, rec: newRecorder(), grant: grant,
		members: map[string]paymentsv1.PaymentsServiceClient{}}
	res := Result{Scenario: sc.Name, Fault: sc.Fault}
	r.nameOrgs()
	if err := r.setup(ctx); err != nil {
		res.Err = fmt.Errorf("setup: %w", err)
		return res
	}
	if err := r.traffic(ctx); err != nil {
		res.Err = err
		return res
	}
	if !r.observed && sc.Inject != nil {
		r.fail(errors.New("the fault did not take effect: the scenario proved nothing"))
	}
	v, err := r.verify(ctx)
	if err != nil {
		res.Err = fmt.Errorf("verifying: %w", err)
		return res
	}
	r.summarize(&res, v)
	res.Duration = time.Since(start)
	return res
}

// nameOrgs names the scenario's debit, payment and mail organizations after its tag.
func (r *run) nameOrgs() {
	orgs := r.load.Orgs
	if r.sc.Orgs != nil {
		orgs = r.sc.Orgs(r.short, r.load)
	}
	for i := range max(1, orgs) {
		r.debitOrgs = append(r.debitOrgs, fmt.Sprintf("%s-d%03d", r.tag, i))
	}
	if r.sc.Payments {
		for i := range 4 {
			r.payOrgs = append(r.payOrgs, fmt.Sprintf("%s-p%02d", r.tag, i))
		}
	}
	if r.sc.Emails {
		for i := range 3 {
			r.mailOrgs = append(r.mailOrgs, fmt.Sprintf("%s-m%02d", r.tag, i))
		}
	}
}

// traffic runs the workers through warm-up, fault and recovery, drains them, and runs the
// scenario's after-checks and the quiet probes.
func (r *run) traffic(ctx context.Context) error {
	sc, load, timing := r.sc, r.load, r.timing
	// Generous outer bounds; the phases below end the traffic much earlier.
	r.setActive(r.debitOrgs)
	r.loadUntil = time.Now().Add(timing.Warm + timing.Recover + 3*time.Minute)
	r.resolveUntil.Store(r.loadUntil.Add(timing.Drain).UnixNano())
	var debits, others sync.WaitGroup
	lim := newLimiter(load.DebitRate)
	for w := range load.DebitWorkers {
		debits.Go(func() { r.debitWorker(ctx, w, lim) })
	}
	for range load.AuthorizeWorkers {
		others.Go(func() { r.authorizeWorker(ctx) })
	}
	if sc.TopUps {
		for range load.TopUpWorkers {
			others.Go(func() { r.topUpWorker(ctx) })
		}
	}
	if sc.Emails {
		others.Go(func() { r.emailCreditWorker(ctx) })
	}
	err := r.faultPhases(ctx)
	// Drain: no new traffic; what is in flight gets until the drain deadline.
	r.resolveUntil.Store(time.Now().Add(timing.Drain).UnixNano())
	r.stopNew.Store(true)
	debits.Wait()
	others.Wait()
	r.hooks.Wait()
	if sc.Emails && err == nil {
		err = r.waitEmails(ctx, time.Now().Add(max(timing.Drain, emailSettleBound)))
	}
	if sc.After != nil && err == nil {
		err = sc.After(ctx, r)
	}
	if err == nil {
		err = r.quietProbes(ctx)
	}
	return err
}

// faultPhases holds the warm-up, injects the fault, lifts it and holds the recovery.
func (r *run) faultPhases(ctx context.Context) error {
	r.mu.Lock()
	r.warmStart = time.Now()
	r.mu.Unlock()
	if err := r.hold(ctx, r.timing.Warm); err != nil {
		return err
	}
	r.mu.Lock()
	r.faultStart = time.Now()
	r.mu.Unlock()
	err := r.sc.Inject(ctx, r)
	r.lift()
	if err != nil {
		return err
	}
	return r.hold(ctx, r.timing.Recover)
}

// setup grants the debit organizations their credits and registers the mail organizations'
// admins (a "payment succeeded" email each paid credit).
func (r *run) setup(ctx context.Context) error {
	if r.sc.Rentals {
		if err := r.startRentals(ctx); err != nil {
			return err
		}
	}
	for _, org := range r.debitOrgs {
		if err := r.grantOrg(ctx, org, r.grant, ledgerv1.CreditSource_CREDIT_SOURCE_GRANT); err != nil {
			return err
		}
	}
	for _, org := range r.mailOrgs {
		if err := r.grantOrg(ctx, org, unit, ledgerv1.CreditSource_CREDIT_SOURCE_GRANT); err != nil {
			return err
		}
		admin, err := r.stack.AdminNotifications(org)
		if err != nil {
			return err
		}
		cctx, cancel := context.WithTimeout(ctx, queryTimeout)
		resp, err := admin.GetNotificationSettings(cctx, &notificationsv1.GetNotificationSettingsRequest{OrgId: org, MemberId: "me"})
		cancel()
		if err != nil {
			return fmt.Errorf("registering the admin of %s: %w", org, err)
		}
		if !resp.GetSettings().GetPaymentSucceededEnabled() {
			return fmt.Errorf("the admin of %s gets no payment emails by default", org)
		}
	}
	return nil
}

// The notifications settings of the suite. A replica killed (SIGKILL) between claiming an
// email and recording its attempt leaves it pending and claimed until emailClaimLease ends (the
// default lease is 2m, longer than the drain: such an email was still pending when the wait
// ended); only then may a live sender claim it again, within a poll, and a failed attempt waits
// at most emailRetryMax before the next. The lease must be at least twice the SMTP timeout.
const (
	emailSMTPTimeout  = 2 * time.Second
	emailClaimLease   = 2*emailSMTPTimeout + time.Second
	emailPollInterval = 200 * time.Millisecond
	emailRetryMax     = 2 * time.Second
	// emailSettleBound is how long an email may take to be sent after the last fault: its
	// lease running out, a poll, a failed attempt (its SMTP timeout) and a retry after the
	// longest backoff, sent in a second poll and attempt.
	emailSettleBound = emailClaimLease + 2*(emailPollInterval+emailSMTPTimeout) + emailRetryMax
)

// waitEmails waits until the mail organizations' emails are all sent or given up, or until
// deadline (the check then counts what is still pending as lost).
func (r *run) waitEmails(ctx context.Context, deadline time.Time) error {
	for {
		pending, err := r.count(ctx, `SELECT count(*) FROM notifications.emails WHERE org_id LIKE $1 AND status = 'pending'`, r.tag+"-m%")
		if err != nil {
			return fmt.Errorf("reading the emails: %w", err)
		}
		queued, err := r.count(ctx, `SELECT count(*) FROM notifications.emails WHERE org_id LIKE $1`, r.tag+"-m%")
		if err != nil {
			return fmt.Errorf("reading the emails: %w", err)
		}
		paid, err := r.countShards(ctx, `SELECT count(*) FROM ledger.events WHERE org_id LIKE $1 AND kind = 'credit' AND credit_source = 'payment_clearing'`, r.tag+"-m%")
		if err != nil {
			return fmt.Errorf("reading the events: %w", err)
		}
		if (pending == 0 && queued >= paid) || time.Now().After(deadline) {
			return nil
		}
		if !pause(ctx, 200*time.Millisecond) {
			return ctx.Err()
		}
	}
}

// quietProbes asks Authorize, once nothing moves any more, for one nano more than each
// organization has (must be refused) and for exactly what it has (should be allowed). A cache
// that went back in time, or kept a value older than PostgreSQL's, allows the first.
func (r *run) quietProbes(ctx context.Context) error {
	r.rec.mu.Lock()
	last := r.rec.lastAck
	r.rec.mu.Unlock()
	// Acknowledged debits may take the grace period to reach the cache.
	if wait := time.Until(last.Add(r.grace)); wait > 0 && !pause(ctx, wait) {
		return ctx.Err()
	}
	read := func(org string) (int64, error) {
		_, balance, held, err := r.stack.residentShard(ctx, org)
		if err != nil {
			return 0, fmt.Errorf("reading %s: %w", org, err)
		}
		return balance - held, nil
	}
	refusedAffordable := 0
	for round := range 2 {
		for _, org := range r.debitOrgs {
			before, err := read(org)
			if err != nil {
				return err
			}
			over := &authz{org: org, amount: max(0, before+1), quiet: true, before: before}
			exact := &authz{org: org, amount: max(0, before), quiet: true, before: before}
			r.authorize(ctx, over)
			r.authorize(ctx, exact)
			after, err := read(org)
			if err != nil {
				return err
			}
			over.after, exact.after = after, after
			if round == 1 && exact.code == codes.OK && !exact.allowed && before == after {
				refusedAffordable++
			}
		}
	}
	if refusedAffordable > 0 {
		r.note("%d quiet Authorize calls refused an amount the organization had (fail-closed, not a violation)", refusedAffordable)
	}
	return nil
}

// refund asks payments (as ops) to refund amount of a payment, once: the scenario never retries,
// so that only payments' own retries can complete a refund left pending.
func (r *run) refund(ctx context.Context, t *topUp, amount int64, key string) *refundCall {
	cctx, cancel := context.WithTimeout(ctx, checkoutTimeout)
	defer cancel()
	_, err := r.stack.PaymentsOps.RefundPayment(cctx, &paymentsv1.RefundPaymentRequest{PaymentId: t.paymentID, Amount: usd(amount),
		Reason: "chaos refund", IdempotencyKey: key})
	c := &refundCall{org: t.org, paymentID: t.paymentID, key: key, amount: amount, code: status.Code(err)}
	r.mu.Lock()
	r.refunds = append(r.refunds, c)
	r.mu.Unlock()
	return c
}

// waitRefunds waits until no refund of the scenario is pending, or until deadline.
func (r *run) waitRefunds(ctx context.Context, deadline time.Time) (time.Time, error) {
	r.mu.Lock()
	keys := make([]string, 0, len(r.refunds))
	for _, c := range r.refunds {
		keys = append(keys, c.key)
	}
	r.mu.Unlock()
	for {
		pending, err := r.count(ctx, `SELECT count(*) FROM payments.refunds WHERE idempotency_key = ANY($1) AND status = 'pending'`, keys)
		if err != nil {
			return time.Time{}, fmt.Errorf("reading the refunds: %w", err)
		}
		if pending == 0 {
			return time.Now(), nil
		}
		if time.Now().After(deadline) {
			return time.Time{}, nil
		}
		if !pause(ctx, 200*time.Millisecond) {
			return time.Time{}, ctx.Err()
		}
	}
}

// paidTopUps creates n top-ups and has each paid and credited (before a fault), retrying through
// the normal path.
func (r *run) paidTopUps(ctx context.Context, n int) ([]*topUp, error) {
	var out []*topUp
	for i := range n {
		var t *topUp
		var err error
		for attempt := 0; attempt < 20; attempt++ {
			if t, err = r.checkout(ctx, r.payOrgs[i%len(r.payOrgs)], 20+int64(i)); err == nil {
				break
			}
			if !pause(ctx, 200*time.Millisecond) {
				return nil, ctx.Err()
			}
		}
		if err != nil {
			return nil, fmt.Errorf("creating a checkout session: %w", err)
		}
		out = append(out, t)
	}
	var wg sync.WaitGroup
	for _, t := range out {
		wg.Go(func() { r.pay(ctx, &http.Client{}, t) })
	}
	wg.Wait()
	r.rec.mu.Lock()
	defer r.rec.mu.Unlock()
	for _, t := range out {
		if t.acked.IsZero() {
			return nil, fmt.Errorf("top-up %s was not paid before the fault", t.paymentID)
		}
	}
	return out, nil
}

// summarize fills the result from the recorder and the violations.
func (r *run) summarize(res *Result, v violations) {
	r.rec.mu.Lock()
	defer r.rec.mu.Unlock()
	r.mu.Lock()
	defer r.mu.Unlock()
	res.Failed = map[string]int{}
	for c, n := range r.rec.attempts {
		res.Failed[c.String()] += n
	}
	res.Refused = map[string]int{}
	var authzLat, warmLat []time.Duration
	var warmAcks, faultAcks int
	for _, d := range r.rec.debits {
		switch {
		case !d.ack.IsZero():
			res.Acked++
			if !d.ack.Before(r.warmStart) && d.ack.Before(r.faultStart) {
				warmAcks++
			}
			if !d.ack.Before(r.faultStart) && d.ack.Before(r.lifted) {
				faultAcks++
			}
		case d.resolved:
			res.Refused[d.final.String()]++
		default:
			res.Unresolved++
		}
	}
	for _, a := range r.rec.authzs {
		if a.quiet || a.code != codes.OK {
			continue
		}
		if !a.sent.Before(r.faultStart) && a.sent.Before(r.lifted) {
			authzLat = append(authzLat, a.recv.Sub(a.sent))
		} else if a.sent.Before(r.faultStart) {
			warmLat = append(warmLat, a.recv.Sub(a.sent))
		}
	}
	res.Authorizes = len(r.rec.authzs)
	res.AuthorizeFailed = map[string]int{}
	for c, n := range r.rec.authzFails {
		res.AuthorizeFailed[c.String()] += n
	}
	if d := r.faultStart.Sub(r.warmStart).Seconds(); d > 0 {
		res.RateBefore = float64(warmAcks) / d
	}
	if d := r.lifted.Sub(r.faultStart).Seconds(); d > 0 {
		res.RateDuring = float64(faultAcks) / d
	}
	res.AuthorizeP99Before, res.AuthorizeP99During = p99(warmLat), p99(authzLat)
	res.TopUps = len(r.rec.topUps)
	res.Webhooks = map[int]int{}
	for c, n := range r.rec.hookStatus {
		res.Webhooks[c] = n
	}
	res.CheckoutFailed = map[string]int{}
	for c, n := range r.rec.checkoutFail {
		res.CheckoutFailed[c.String()] = n
	}
	res.Lost, res.Doubled, res.FailOpen, res.Broken = v.lost, v.doubled, v.failOpen, v.broken
	res.Violations = v.details
	res.Notes = append(res.Notes, r.notes...)
	res.Recovery = -1
	signal := r.firstAck
	if r.sc.Recovery == RecoverWebhook {
		signal = r.firstHook
	}
	if r.sc.Recovery == RecoverRefund || r.sc.Recovery == RecoverEmail {
		signal = r.recoveredAt
	}
	if !signal.IsZero() && !r.lifted.IsZero() {
		res.Recovery = signal.Sub(r.lifted)
	}
	for _, e := range r.failures {
		res.Failures = append(res.Failures, e.Error())
	}
	if r.stack.topo != nil {
		stats := r.stats
		res.Hosts = &stats
	}
}

func p99(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	slices.Sort(ds)
	return ds[(len(ds)*99)/100]
}
