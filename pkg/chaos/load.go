package chaos

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"sync"
	"time"

	moneypb "google.golang.org/genproto/googleapis/type/money"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	ledgerv1 "github.com/tallyhq/tally/pkg/gen/tally/ledger/v1"
	paymentsv1 "github.com/tallyhq/tally/pkg/gen/tally/payments/v1"
	"github.com/tallyhq/tally/pkg/money"
)

// unit is one USD in nanos.
const unit = int64(money.NanosPerUnit)

// Call deadlines of the suite's clients.
const (
	debitTimeout     = 3 * time.Second
	authorizeTimeout = time.Second
	checkoutTimeout  = 5 * time.Second
	queryTimeout     = 10 * time.Second
)

// LoadConfig bounds the traffic of a scenario.
type LoadConfig struct {
	// DebitWorkers is the number of concurrent debit callers.
	DebitWorkers int
	// AuthorizeWorkers is the number of concurrent Authorize callers.
	AuthorizeWorkers int
	// MaxDebits bounds the debits of one scenario.
	MaxDebits int
	// DebitRate bounds the debits per second of all workers together; 0 is unbounded.
	DebitRate float64
	// AuthorizeRate bounds each Authorize worker's calls per second.
	AuthorizeRate float64
	// RetryStorm is the share of debits sent twice at once with the same key, as a client
	// retrying too early does.
	RetryStorm float64
	// Orgs is the number of organizations the debits spread over.
	Orgs int
	// TopUpWorkers create Checkout Sessions and have them paid (scenarios with payments).
	TopUpWorkers int
	// TopUpRate bounds each top-up worker's sessions per second.
	TopUpRate float64
	// MaxTopUps bounds the top-ups of one scenario.
	MaxTopUps int
	// EmailCredits is how many paid credits per second go to organizations whose admin gets a
	// "payment succeeded" email (scenarios with notifications).
	EmailCredits float64
}

// debit is one debit call with a unique key, followed until it is acknowledged or refused.
type debit struct {
	org    string
	key    string
	amount int64
	first  time.Time // first attempt sent
	// ack is when it was acknowledged (zero when not); tx the transaction it was acknowledged with.
	ack time.Time
	tx  string
	// final is the code of the definitive answer (OK when acknowledged); resolved is false when
	// the outcome stayed unknown until the suite gave up.
	final    codes.Code
	resolved bool
	// txs are the distinct transaction ids the ledger answered with (more than one: doubled).
	txs map[string]bool
}

// authz is one Authorize call.
type authz struct {
	org        string
	amount     int64
	sent, recv time.Time
	code       codes.Code
	allowed    bool
	available  int64
	// quiet marks the probes of the quiet phase, which know the true available amount: it is
	// between before and after, read from PostgreSQL around the call.
	quiet         bool
	before, after int64
}

// topUp is one Checkout Session paid by the simulated Stripe.
type topUp struct {
	org         string
	paymentID   string
	sessionID   string
	eventID     string
	amount      int64 // nanos
	amountMinor int64
	created     time.Time
	// acked is when a delivery was answered 2xx (zero: never); creditAtAck is whether the ledger
	// held the credit at that moment.
	acked       time.Time
	creditAtAck bool
	checkedAck  bool
	statuses    map[int]int // delivery answers by HTTP status (0: no answer)
}

// emailCredit is a paid credit on an organization with an email subscriber.
type emailCredit struct {
	org      string
	key      string
	ack      time.Time
	resolved bool
}

// recorder keeps everything a scenario's traffic saw.
type recorder struct {
	mu           sync.Mutex
	debits       []*debit
	attempts     map[codes.Code]int // failed debit attempts by code
	authzs       []*authz
	authzFails   map[codes.Code]int
	topUps       []*topUp
	checkoutFail map[codes.Code]int
	hookStatus   map[int]int
	emails       []*emailCredit
	lastAck      time.Time
	spent        map[string]int64 // acknowledged debits per org
}

func newRecorder() *recorder {
	return &recorder{attempts: map[codes.Code]int{}, authzFails: map[codes.Code]int{}, checkoutFail: map[codes.Code]int{},
		hookStatus: map[int]int{}, spent: map[string]int64{}}
}

// limiter spaces calls to a rate shared by its callers.
type limiter struct {
	mu       sync.Mutex
	interval time.Duration
	next     time.Time
}

func newLimiter(perSecond float64) *limiter {
	if perSecond <= 0 {
		return nil
	}
	return &limiter{interval: time.Duration(float64(time.Second) / perSecond)}
}

// wait blocks until the caller's turn; false when ctx ended first.
func (l *limiter) wait(ctx context.Context) bool {
	if l == nil {
		return ctx.Err() == nil
	}
	l.mu.Lock()
	now := time.Now()
	if l.next.Before(now) {
		l.next = now
	}
	at := l.next
	l.next = l.next.Add(l.interval)
	l.mu.Unlock()
	d := time.Until(at)
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// retryable reports whether a call that failed with code may have an unknown outcome or may work
// when retried: the outages a client retries with the same key. Internal is retried too, so that
// the suite learns the outcome, but it is counted as a violation (an outage must be Unavailable).
func retryable(code codes.Code) bool {
	switch code {
	case codes.Unavailable, codes.DeadlineExceeded, codes.Aborted, codes.ResourceExhausted, codes.Unknown,
		codes.Canceled, codes.Internal:
		return true
	}
	return false
}

// pause waits d or until ctx ends; false when ctx ended.
func pause(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// usd is an amount of nanos in USD on the wire.
func usd(nanos int64) *moneypb.Money { return money.ToProto(money.Nanos(nanos), "USD") }

// debitWorker sends debits with unique keys until the load stops, following each until it is
// acknowledged, refused or the suite gives up on it.
func (r *run) debitWorker(ctx context.Context, w int, lim *limiter) {
	for n := 0; ; n++ {
		if r.stopNew.Load() || time.Now().After(r.loadUntil) || !lim.wait(ctx) {
			return
		}
		if r.debitCount.Add(1) > int64(r.load.MaxDebits) {
			return
		}
		d := &debit{
			org:    r.pickOrg(),
			key:    fmt.Sprintf("%s-w%02d-%07d", r.tag, w, n),
			amount: (1 + rand.Int64N(100)) * unit / 100,
			first:  time.Now(),
			txs:    map[string]bool{},
		}
		r.rec.mu.Lock()
		r.rec.debits = append(r.rec.debits, d)
		r.rec.mu.Unlock()
		r.resolveDebit(ctx, d, rand.Float64() < r.load.RetryStorm)
	}
}

// resolveDebit sends d until it has a definitive answer or the resolve deadline passes.
func (r *run) resolveDebit(ctx context.Context, d *debit, storm bool) {
	backoff := 20 * time.Millisecond
	for attempt := 0; ; attempt++ {
		copies := 1
		if storm && attempt == 0 {
			copies = 2
		}
		codesSeen := make([]codes.Code, copies)
		txs := make([]string, copies)
		var wg sync.WaitGroup
		for i := range copies {
			wg.Go(func() {
				cctx, cancel := context.WithTimeout(ctx, debitTimeout)
				defer cancel()
				resp, err := r.stack.LedgerBackend.Debit(cctx, &ledgerv1.DebitRequest{
					OrgId: d.org, Amount: usd(d.amount), IdempotencyKey: d.key, Description: "chaos debit",
				})
				codesSeen[i], txs[i] = status.Code(err), resp.GetTransactionId()
			})
		}
		wg.Wait()
		now := time.Now()
		acked, final := false, codes.OK
		r.rec.mu.Lock()
		for i, c := range codesSeen {
			if c == codes.OK {
				acked = true
				d.txs[txs[i]] = true
				d.tx = txs[i]
				continue
			}
			r.rec.attempts[c]++
			final = c
		}
		if acked {
			d.ack, d.final, d.resolved = now, codes.OK, true
			r.rec.spent[d.org] += d.amount
			if now.After(r.rec.lastAck) {
				r.rec.lastAck = now
			}
			r.noteAck(now)
		}
		r.rec.mu.Unlock()
		if acked {
			return
		}
		if !retryable(final) {
			r.rec.mu.Lock()
			d.final, d.resolved = final, true
			r.rec.mu.Unlock()
			return
		}
		if r.pastResolve() || !pause(ctx, backoff) {
			r.rec.mu.Lock()
			d.final = final
			r.rec.mu.Unlock()
			return
		}
		backoff = min(backoff*2, 500*time.Millisecond)
	}
}

// authorizeWorker asks Authorize for amounts around what the organization can afford, as a model
// backend would before each call.
func (r *run) authorizeWorker(ctx context.Context) {
	lim := newLimiter(r.load.AuthorizeRate)
	for !r.stopNew.Load() && time.Now().Before(r.loadUntil) && lim.wait(ctx) {
		org := r.debitOrgs[rand.IntN(len(r.debitOrgs))]
		r.rec.mu.Lock()
		est := r.grant - r.rec.spent[org]
		r.rec.mu.Unlock()
		amount := max(0, est+rand.Int64N(4*unit)-2*unit)
		r.authorize(ctx, &authz{org: org, amount: amount})
	}
}

// authorize sends a, records its answer and returns it.
func (r *run) authorize(ctx context.Context, a *authz) *authz {
	cctx, cancel := context.WithTimeout(ctx, authorizeTimeout)
	defer cancel()
	a.sent = time.Now()
	resp, err := r.stack.LedgerBackend.Authorize(cctx, &ledgerv1.AuthorizeRequest{OrgId: a.org, Amount: usd(a.amount)})
	a.recv = time.Now()
	a.code = status.Code(err)
	if err == nil {
		a.allowed = resp.GetAllowed()
		if m, err := money.FromProto(resp.GetAvailable()); err == nil {
			a.available = int64(m.Nanos)
		}
	}
	r.rec.mu.Lock()
	r.rec.authzs = append(r.rec.authzs, a)
	if a.code != codes.OK {
		r.rec.authzFails[a.code]++
	}
	r.rec.mu.Unlock()
	return a
}

// topUpWorker starts top-ups as members of the payment organizations and has Stripe pay them.
func (r *run) topUpWorker(ctx context.Context) {
	lim := newLimiter(r.load.TopUpRate)
	for !r.stopNew.Load() && time.Now().Before(r.loadUntil) && lim.wait(ctx) {
		if r.topUpCount.Add(1) > int64(r.load.MaxTopUps) {
			return
		}
		org := r.payOrgs[rand.IntN(len(r.payOrgs))]
		t, err := r.checkout(ctx, org, 5+rand.Int64N(96))
		if err != nil {
			continue
		}
		r.payAsync(ctx, t)
	}
}

// checkout creates a Checkout Session of units USD as a member of org.
func (r *run) checkout(ctx context.Context, org string, units int64) (*topUp, error) {
	member, err := r.member(org)
	if err != nil {
		return nil, err
	}
	cctx, cancel := context.WithTimeout(ctx, checkoutTimeout)
	defer cancel()
	resp, err := member.CreateCheckoutSession(cctx, &paymentsv1.CreateCheckoutSessionRequest{OrgId: org, Amount: usd(units * unit)})
	if err != nil {
		r.rec.mu.Lock()
		r.rec.checkoutFail[status.Code(err)]++
		r.rec.mu.Unlock()
		return nil, err
	}
	t := &topUp{org: org, paymentID: resp.GetPaymentId(), sessionID: resp.GetSessionId(), amount: units * unit, amountMinor: units * 100,
		created: time.Now(), statuses: map[int]int{}}
	t.eventID = "evt_chaos_" + r.tag + "_" + t.paymentID
	r.rec.mu.Lock()
	r.rec.topUps = append(r.rec.topUps, t)
	r.rec.mu.Unlock()
	return t, nil
}

// pay delivers the paid event of t as Stripe does: retried with backoff on anything but 2xx,
// until the delivery deadline. On the first 2xx it checks that the credit is in the ledger.
func (r *run) pay(ctx context.Context, client *http.Client, t *topUp) {
	payload, err := paidEvent(t.eventID, t)
	if err != nil {
		r.fail(err)
		return
	}
	backoff := 100 * time.Millisecond
	for {
		code, _ := r.stack.deliverWebhook(ctx, client, payload)
		now := time.Now()
		r.rec.mu.Lock()
		t.statuses[code]++
		r.rec.hookStatus[code]++
		r.rec.mu.Unlock()
		if code >= 200 && code < 300 {
			found, err := r.creditCount(ctx, t.org, "checkout:"+t.sessionID)
			r.rec.mu.Lock()
			t.acked = now
			t.checkedAck, t.creditAtAck = err == nil, found > 0
			r.rec.mu.Unlock()
			r.noteHook(now)
			return
		}
		if r.pastResolve() || !pause(ctx, backoff) {
			return
		}
		backoff = min(backoff*2, 2*time.Second)
	}
}

// creditCount counts the ledger transactions of org with key, over every shard (an organization
// being moved has its history on both for a while: more than one is no double credit here).
func (r *run) creditCount(ctx context.Context, org, key string) (int, error) {
	n, err := r.countShards(ctx, `SELECT count(*) FROM ledger.transactions WHERE org_id = $1 AND idempotency_key = $2`, org, key)
	if err != nil {
		return 0, fmt.Errorf("reading the ledger: %w", err)
	}
	return n, nil
}

// emailCreditWorker credits the mail organizations (paid credits: each one is a "payment
// succeeded" email to their admin).
func (r *run) emailCreditWorker(ctx context.Context) {
	lim := newLimiter(r.load.EmailCredits)
	for n := 0; !r.stopNew.Load() && time.Now().Before(r.loadUntil) && lim.wait(ctx); n++ {
		c := &emailCredit{org: r.mailOrgs[n%len(r.mailOrgs)], key: fmt.Sprintf("%s-mail-%05d", r.tag, n)}
		r.rec.mu.Lock()
		r.rec.emails = append(r.rec.emails, c)
		r.rec.mu.Unlock()
		backoff := 50 * time.Millisecond
		for {
			cctx, cancel := context.WithTimeout(ctx, debitTimeout)
			_, err := r.stack.LedgerOps.Credit(cctx, &ledgerv1.CreditRequest{OrgId: c.org, Amount: usd(unit), IdempotencyKey: c.key,
				Reason: "chaos top-up", Source: ledgerv1.CreditSource_CREDIT_SOURCE_PAYMENT})
			cancel()
			code := status.Code(err)
			if code == codes.OK || !retryable(code) {
				r.rec.mu.Lock()
				c.resolved = true
				if code == codes.OK {
					c.ack = time.Now()
				}
				r.rec.mu.Unlock()
				break
			}
			if r.pastResolve() || !pause(ctx, backoff) {
				break
			}
			backoff = min(backoff*2, 500*time.Millisecond)
		}
	}
}

// grantOrg credits org once with key (retried until acknowledged).
func (r *run) grantOrg(ctx context.Context, org string, amount int64, source ledgerv1.CreditSource) error {
	key := r.tag + "-grant-" + org
	deadline := time.Now().Add(30 * time.Second)
	for {
		cctx, cancel := context.WithTimeout(ctx, debitTimeout)
		_, err := r.stack.LedgerOps.Credit(cctx, &ledgerv1.CreditRequest{OrgId: org, Amount: usd(amount), IdempotencyKey: key,
			Reason: "chaos grant", Source: source})
		cancel()
		if err == nil {
			return nil
		}
		if !retryable(status.Code(err)) || time.Now().After(deadline) {
			return fmt.Errorf("granting credits to %s: %w", org, err)
		}
		if !pause(ctx, 100*time.Millisecond) {
			return ctx.Err()
		}
	}
}
