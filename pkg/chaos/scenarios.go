package chaos

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"time"

	"github.com/tallyhq/tally/pkg/auth"
	"github.com/tallyhq/tally/pkg/textcheck"
)

// Recovery says which signal ends a scenario's recovery: the first success of that kind after
// the fault was lifted.
type Recovery int

// Recovery signals.
const (
	// RecoverDebit: the first debit acknowledged.
	RecoverDebit Recovery = iota
	// RecoverWebhook: the first webhook answered 2xx.
	RecoverWebhook
	// RecoverRefund: no refund pending any more.
	RecoverRefund
	// RecoverEmail: the first email sent.
	RecoverEmail
)

// Scenario is one fault and the traffic it is injected into.
type Scenario struct {
	Name string
	// Fault describes what is injected.
	Fault string
	// Short scenarios make up the short suite (make test).
	Short bool
	// Payments adds top-ups paid through Stripe's webhooks; Emails adds paid credits whose
	// "payment succeeded" emails go out over SMTP.
	Payments, Emails bool
	// TopUps runs the background top-up traffic (with Payments).
	TopUps bool
	// Rentals starts rentals metered by instances-metering (hosts topology only), stopped and
	// checked period by period after the drain.
	Rentals bool
	// Orgs, when set, is the number of debit organizations instead of LoadConfig.Orgs.
	Orgs     func(short bool, load LoadConfig) int
	Recovery Recovery
	// Inject runs after the warm-up and returns once the fault is lifted (r.lift marks the
	// moment; returning marks it otherwise). It calls r.observe once the fault visibly took
	// effect: a scenario whose fault did not is a failure, not a pass.
	Inject func(ctx context.Context, r *run) error
	// After, when set, runs after the drain: waiting for what the fault left to finish.
	After func(ctx context.Context, r *run) error
}

// Scenarios returns every scenario, in the order they run.
func Scenarios() []Scenario {
	return []Scenario{
		{Name: "baseline", Fault: "none: the normal rates", Inject: injectNothing},
		{Name: "ledger-kill", Fault: "ledger kill -9 under load, repeatedly (4 times short, 6 full), commits acknowledged 150ms late, each organization untouched after its kill",
			Short: true, Orgs: ledgerKillOrgs, Inject: injectLedgerKills},
		{Name: "ledger-kill-stream", Fault: "ledger kill -9 twice under DebitStream streams; the clients replay their unacknowledged debits with the same keys", Inject: injectLedgerKillMidStream},
		{Name: "sdk-kill", Fault: "a model backend debiting through pkg/client killed with SIGKILL mid-stream twice; restarted, it resends its unacknowledged debits with the same keys", Inject: injectSDKKill},
		{Name: "redis-kill", Fault: "Redis killed for 5s, back empty", Inject: injectRedisKill},
		{Name: "redis-pause", Fault: "Redis paused (SIGSTOP) for 5s", Inject: injectRedisPause},
		{Name: "redis-snapshot", Fault: "Redis restored from an older snapshot (SAVE, more writes, kill, old dump.rdb back)", Short: true, Inject: injectRedisSnapshot},
		{Name: "redis-stall-ledger-restart", Fault: "Redis paused, the ledger killed and restarted during the pause", Inject: injectRedisStallLedgerRestart},
		{Name: "postgres-restart", Fault: "PostgreSQL immediate stop (a crash) for 3s, then started", Short: true, Inject: injectPostgresRestart},
		{Name: "payments-kill", Fault: "payments kill -9 twice while webhooks are being delivered", Payments: true, TopUps: true,
			Recovery: RecoverWebhook, Inject: injectPaymentsKills},
		{Name: "token-expired", Fault: "payments' own service token expires; webhooks arrive; the token is renewed", Short: true,
			Payments: true, Recovery: RecoverWebhook, Inject: injectExpiredToken},
		{Name: "stripe-errors", Fault: "Stripe API errors (500), timeouts and connection resets during checkouts and refunds",
			Payments: true, TopUps: true, Recovery: RecoverRefund, Inject: injectStripeErrors, After: afterRefunds},
		{Name: "refund-stripe-down", Fault: "Stripe unreachable (connection refused) while refunds are requested",
			Payments: true, Recovery: RecoverRefund, Inject: injectRefundStripeDown, After: afterRefunds},
		{Name: "notifications-kill", Fault: "notifications kill -9 twice while emails are queued and sent", Emails: true,
			Recovery: RecoverEmail, Inject: injectNotificationsKills, After: afterEmails},
		{Name: "smtp-stall", Fault: "SMTP server paused (SIGSTOP) for 5s", Emails: true, Recovery: RecoverEmail,
			Inject: injectSMTPStall, After: afterEmails},
		rechargeRestart,
	}
}

// faultFor is how long most faults last.
const faultFor = 5 * time.Second

func injectNothing(ctx context.Context, r *run) error {
	r.observe("none expected")
	return r.hold(ctx, faultFor)
}

// killService kills a service with SIGKILL and waits until its supervisor has it running again;
// killed, when set, runs right after the kill.
func (r *run) killService(ctx context.Context, name string, killed func()) error {
	p := r.stack.Service(name)
	before := p.Restarts()
	if err := p.Kill(ctx); err != nil {
		return err
	}
	if killed != nil {
		killed()
	}
	deadline := time.Now().Add(time.Minute)
	for p.Restarts() == before || !p.Running() {
		if time.Now().After(deadline) {
			return fmt.Errorf("%s was not restarted within a minute", name)
		}
		if !pause(ctx, 20*time.Millisecond) {
			return ctx.Err()
		}
	}
	return nil
}

// ledgerKills is how often ledger-kill kills the ledger.
func ledgerKills(short bool) int {
	if short {
		return 4
	}
	return 6
}

func injectLedgerKills(ctx context.Context, r *run) error {
	// The organizations are split in one group per kill; each group gets the debits until its
	// kill and nothing afterwards. A debit committed but not yet in the cache when the ledger
	// dies is retried by its client after the restart and answered from the stored result: if
	// that replay leaves the cache stale, nothing else corrects it, and the quiet probes find it.
	// PostgreSQL's acknowledgments of the ledger's commits are held back meanwhile (a slow
	// synchronous replica), so that each kill is likely to land between a batch's commit and its
	// cache update.
	kills := ledgerKills(r.short)
	groups := splitOrgs(r.debitOrgs, kills)
	r.stack.PGProxy.DelayReplies(commitComplete, commitDelay)
	defer r.stack.PGProxy.DelayReplies(nil, 0)
	for i, group := range groups {
		r.setActive(group)
		if err := r.hold(ctx, 1500*time.Millisecond); err != nil {
			return err
		}
		var lift func()
		if i == len(groups)-1 {
			// No new traffic after the last kill; its in-flight debits are retried.
			r.stopNew.Store(true)
			lift = r.lift
		}
		if err := r.killService(ctx, "ledger", lift); err != nil {
			return err
		}
	}
	r.observe("ledger killed %d times with debits in flight and commit acknowledgments %s late, restarted by its supervisor (%d restarts)",
		kills, commitDelay, r.stack.Service("ledger").Restarts())
	return nil
}

// ledgerKillOrgs gives each kill its own organizations, as many as there are debit callers: a
// debit committed but not cached when the ledger dies stays stale only if no other debit of its
// organization commits afterwards, so each organization should have about one debit in flight.
func ledgerKillOrgs(short bool, load LoadConfig) int {
	return ledgerKills(short) * max(1, load.DebitWorkers)
}

// commitComplete is PostgreSQL's CommandComplete message of a COMMIT ('C', length 11, "COMMIT").
var commitComplete = []byte("C\x00\x00\x00\x0bCOMMIT\x00")

// commitDelay is how long ledger-kill holds back each commit's acknowledgment.
const commitDelay = 150 * time.Millisecond

// splitOrgs splits orgs into n groups of at least one.
func splitOrgs(orgs []string, n int) [][]string {
	n = max(1, min(n, len(orgs)))
	out := make([][]string, n)
	for i, org := range orgs {
		out[i*n/len(orgs)] = append(out[i*n/len(orgs)], org)
	}
	return out
}

func injectRedisKill(ctx context.Context, r *run) error {
	if err := r.stack.Redis.Kill(ctx); err != nil {
		return err
	}
	if err := r.redisDown(ctx); err != nil {
		return err
	}
	if err := os.Remove(r.stack.Redis.DumpFile()); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if err := r.hold(ctx, faultFor); err != nil {
		return err
	}
	r.lift()
	return r.stack.Redis.Start(ctx)
}

// redisDown observes that Redis does not answer.
func (r *run) redisDown(ctx context.Context) error {
	cctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	conn, err := (&net.Dialer{}).DialContext(cctx, "tcp", r.stack.Redis.Addr())
	if err != nil {
		r.observe("Redis refuses connections")
		return nil
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(300 * time.Millisecond))
	if _, err := conn.Write([]byte("PING\r\n")); err == nil {
		if _, err := conn.Read(make([]byte, 16)); err == nil {
			return errors.New("redis still answers PING")
		}
	}
	r.observe("Redis accepts connections but answers nothing")
	return nil
}

func injectRedisPause(ctx context.Context, r *run) error {
	if err := r.stack.Redis.Pause(); err != nil {
		return err
	}
	defer func() { _ = r.stack.Redis.Resume() }()
	if err := r.redisDown(ctx); err != nil {
		return err
	}
	if err := r.hold(ctx, faultFor); err != nil {
		return err
	}
	r.lift()
	return r.stack.Redis.Resume()
}

// untouched keeps new debits off the second half of the organizations from now on: those keep
// whatever the cache holds for them, for the Authorize callers and the quiet probes to find.
func (r *run) untouched() []string {
	half := r.debitOrgs[len(r.debitOrgs)/2:]
	r.setActive(r.debitOrgs[:len(r.debitOrgs)/2])
	return half
}

func injectRedisSnapshot(ctx context.Context, r *run) error {
	rd := r.stack.Redis
	if err := rd.Save(ctx); err != nil {
		return err
	}
	old, err := os.ReadFile(rd.DumpFile())
	if err != nil {
		return fmt.Errorf("keeping the snapshot: %w", err)
	}
	// More writes after the snapshot: the balances and their cache entries move on, the
	// snapshot stays behind. Then half of the organizations get no more debits, and their last
	// ones settle in the cache before Redis goes back in time.
	if err := r.hold(ctx, 3*time.Second); err != nil {
		return err
	}
	stale := r.untouched()
	if err := r.hold(ctx, settle); err != nil {
		return err
	}
	if err := rd.Kill(ctx); err != nil {
		return err
	}
	if err := os.WriteFile(rd.DumpFile(), old, 0o644); err != nil {
		return fmt.Errorf("restoring the snapshot: %w", err)
	}
	r.lift()
	if err := rd.Start(ctx); err != nil {
		return err
	}
	r.observe("Redis came back with a %d-byte snapshot 4s old; %d organizations untouched since the last cache write before it",
		len(old), len(stale))
	return nil
}

// settle is how long a scenario lets the debits in flight finish before the next step.
const settle = time.Second

func injectRedisStallLedgerRestart(ctx context.Context, r *run) error {
	rd := r.stack.Redis
	if err := rd.Pause(); err != nil {
		return err
	}
	defer func() { _ = rd.Resume() }()
	if err := r.redisDown(ctx); err != nil {
		return err
	}
	// Debits commit to PostgreSQL while their cache updates fail: the ledger knows those
	// entries are stale, until it restarts. Half of the organizations get no debit after that.
	if err := r.hold(ctx, 2*time.Second); err != nil {
		return err
	}
	stale := r.untouched()
	if err := r.hold(ctx, settle); err != nil {
		return err
	}
	if err := r.killService(ctx, "ledger", nil); err != nil {
		return err
	}
	if err := r.hold(ctx, 2*time.Second); err != nil {
		return err
	}
	r.lift()
	if err := rd.Resume(); err != nil {
		return err
	}
	r.observe("the ledger restarted while Redis was paused; %d organizations debited during the pause and untouched since", len(stale))
	return nil
}

func injectPostgresRestart(ctx context.Context, r *run) error {
	if err := r.stack.PG.StopImmediate(ctx); err != nil {
		return err
	}
	cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	err := r.stack.DB.Ping(cctx)
	cancel()
	if err == nil {
		return errors.New("postgres still answers after the immediate stop")
	}
	r.observe("PostgreSQL down (%s)", textcheck.Abbreviate(err.Error(), 60))
	if err := r.hold(ctx, 3*time.Second); err != nil {
		return err
	}
	r.lift()
	return r.stack.PG.Start(ctx)
}

func injectPaymentsKills(ctx context.Context, r *run) error {
	for i := range 2 {
		if err := r.hold(ctx, 1500*time.Millisecond); err != nil {
			return err
		}
		var lift func()
		if i == 1 {
			lift = r.lift
		}
		if err := r.killService(ctx, "payments", lift); err != nil {
			return err
		}
	}
	r.observe("payments killed twice with webhooks in flight (%d restarts)", r.stack.Service("payments").Restarts())
	return nil
}

// expiringTokenTTL is the lifetime of the token payments is started with in token-expired.
const expiringTokenTTL = 8 * time.Second

func injectExpiredToken(ctx context.Context, r *run) error {
	tok, err := r.stack.TokenFor(auth.Claims{Subject: "service:payments", Roles: []auth.Role{auth.RoleService}}, expiringTokenTTL)
	if err != nil {
		return err
	}
	expires := time.Now().Add(expiringTokenTTL)
	if err := r.stack.ReplaceService(ctx, "payments", map[string]string{"TALLY_SERVICE_TOKEN": tok}); err != nil {
		return err
	}
	// Sessions are created while the token is valid (creating one asks the ledger for the
	// organization's currency) ...
	var topUps []*topUp
	for i := range 6 {
		t, err := r.checkout(ctx, r.payOrgs[i%len(r.payOrgs)], 10+int64(i))
		if err != nil {
			return fmt.Errorf("creating a session before the token expires: %w", err)
		}
		topUps = append(topUps, t)
	}
	// ... and paid once it has expired.
	if err := r.hold(ctx, time.Until(expires)+1500*time.Millisecond); err != nil {
		return err
	}
	for _, t := range topUps {
		r.payAsync(ctx, t)
	}
	if err := r.hold(ctx, 4*time.Second); err != nil {
		return err
	}
	r.rec.mu.Lock()
	refused, wrongly := 0, 0
	for _, t := range topUps {
		for code, n := range t.statuses {
			if code < 200 || code >= 300 {
				refused += n
			}
		}
		if !t.acked.IsZero() && !t.creditAtAck {
			wrongly++
		}
	}
	r.rec.mu.Unlock()
	if refused > 0 || wrongly > 0 {
		r.observe("with the token expired, %d deliveries were refused and %d acknowledged without a credit", refused, wrongly)
	}
	// The operator renews the token: payments runs with its normal identity again.
	r.lift()
	return r.stack.ReplaceService(ctx, "payments", nil)
}

func injectStripeErrors(ctx context.Context, r *run) error {
	paid, err := r.paidTopUps(ctx, 3)
	if err != nil {
		return err
	}
	proxy := r.stack.Stripe
	steps := []struct {
		mode ProxyMode
		hold time.Duration
	}{{ProxyError, 2 * time.Second}, {ProxyTimeout, 3 * time.Second}, {ProxyReset, 2 * time.Second}}
	for i, step := range steps {
		if err := proxy.SetMode(step.mode); err != nil {
			return err
		}
		r.refund(ctx, paid[i], unit, fmt.Sprintf("%s-refund-%d", r.tag, i))
		if err := r.hold(ctx, step.hold); err != nil {
			return err
		}
	}
	faulted := 0
	for _, req := range proxy.Requests() {
		if req.Mode != ProxyPass && !req.At.Before(r.faultStart) {
			faulted++
		}
	}
	r.lift()
	if err := proxy.SetMode(ProxyPass); err != nil {
		return err
	}
	if faulted > 0 {
		r.observe("%d Stripe API calls answered with an error, a timeout or a reset", faulted)
	}
	return nil
}

func injectRefundStripeDown(ctx context.Context, r *run) error {
	paid, err := r.paidTopUps(ctx, 4)
	if err != nil {
		return err
	}
	proxy := r.stack.Stripe
	if err := proxy.SetMode(ProxyDown); err != nil {
		return err
	}
	failed := 0
	for i, t := range paid {
		if c := r.refund(ctx, t, unit+int64(i)*unit/10, fmt.Sprintf("%s-refund-%d", r.tag, i)); c.code != 0 {
			failed++
		}
	}
	pending, err := r.count(ctx, `SELECT count(*) FROM payments.refunds WHERE idempotency_key LIKE $1 AND status = 'pending'`, r.tag+"-refund-%")
	if err != nil {
		return err
	}
	if failed > 0 || pending > 0 {
		r.observe("with Stripe unreachable, %d refund requests failed and %d refunds are pending", failed, pending)
	}
	if err := r.hold(ctx, 3*time.Second); err != nil {
		return err
	}
	r.lift()
	return proxy.SetMode(ProxyPass)
}

// afterRefunds waits (without asking again) for payments to complete the refunds left pending.
func afterRefunds(ctx context.Context, r *run) error {
	at, err := r.waitRefunds(ctx, time.Now().Add(r.timing.Drain))
	if err != nil {
		return err
	}
	r.mu.Lock()
	r.recoveredAt = at
	r.mu.Unlock()
	return nil
}

func injectNotificationsKills(ctx context.Context, r *run) error {
	for i := range 2 {
		if err := r.hold(ctx, 1500*time.Millisecond); err != nil {
			return err
		}
		var lift func()
		if i == 1 {
			lift = r.lift
		}
		if err := r.killService(ctx, "notifications", lift); err != nil {
			return err
		}
	}
	r.observe("notifications killed twice while emails were queued (%d restarts)", r.stack.Service("notifications").Restarts())
	return nil
}

func injectSMTPStall(ctx context.Context, r *run) error {
	if err := r.stack.Mail.Pause(); err != nil {
		return err
	}
	defer func() { _ = r.stack.Mail.Resume() }()
	conn, err := net.DialTimeout("tcp", r.stack.Mail.SMTPAddr(), time.Second)
	if err != nil {
		return fmt.Errorf("dialing the paused SMTP server: %w", err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	_, err = conn.Read(make([]byte, 64))
	_ = conn.Close()
	if err == nil {
		return errors.New("the paused SMTP server still greets")
	}
	r.observe("the SMTP server accepts connections but sends no greeting")
	if err := r.hold(ctx, faultFor); err != nil {
		return err
	}
	r.lift()
	return r.stack.Mail.Resume()
}

// afterEmails records when the first email after the fault went out.
func afterEmails(ctx context.Context, r *run) error {
	r.mu.Lock()
	lifted := r.lifted
	r.mu.Unlock()
	cctx, cancel := context.WithTimeout(ctx, queryTimeout)
	defer cancel()
	var at *time.Time
	err := r.stack.DB.QueryRow(cctx, `SELECT min(sent_at) FROM notifications.emails WHERE org_id LIKE $1 AND sent_at > $2`,
		r.tag+"-m%", lifted).Scan(&at)
	if err != nil {
		return fmt.Errorf("reading the emails: %w", err)
	}
	if at != nil {
		r.mu.Lock()
		r.recoveredAt = *at
		r.mu.Unlock()
	}
	return nil
}
