package chaos

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
)

// violations counts what a scenario broke, by the table's columns.
type violations struct {
	lost, doubled, failOpen, broken int
	details                         []string
}

// maxDetails bounds the examples printed per kind of violation.
const maxDetails = 5

func (v *violations) add(kind *int, counts map[string]int, label, format string, args ...any) {
	*kind++
	counts[label]++
	if counts[label] <= maxDetails {
		v.details = append(v.details, label+": "+fmt.Sprintf(format, args...))
	}
}

// verify checks the scenario's outcome in PostgreSQL (and mailpit, and the Stripe proxy's log).
func (r *run) verify(ctx context.Context) (violations, error) {
	var v violations
	seen := map[string]int{}
	if err := r.checkLedgerInvariants(ctx, &v, seen); err != nil {
		return v, err
	}
	txs, err := r.ledgerTransactions(ctx)
	if err != nil {
		return v, err
	}
	r.checkDebits(&v, seen, txs)
	if err := r.checkBalances(ctx, &v, seen, txs); err != nil {
		return v, err
	}
	r.checkAuthorizations(&v, seen, txs)
	r.checkCodes(&v, seen)
	if len(r.payOrgs) > 0 {
		if err := r.checkTopUps(ctx, &v, seen, txs); err != nil {
			return v, err
		}
		if err := r.checkRefunds(ctx, &v, seen, txs); err != nil {
			return v, err
		}
	}
	if len(r.mailOrgs) > 0 {
		if err := r.checkEmails(ctx, &v, seen); err != nil {
			return v, err
		}
	}
	if r.sc.Rentals {
		if err := r.checkRentals(ctx, &v, seen); err != nil {
			return v, err
		}
		if err := r.checkReconciliation(ctx, &v, seen); err != nil {
			return v, err
		}
	}
	return v, nil
}

// checkLedgerInvariants checks the whole ledger, shard by shard: every transaction balanced and
// posted, the postings sum to zero, every stored balance equals its postings, every
// organization's balance equals its transactions, no key used twice. A shard an organization
// moved away from keeps its history and the move-out adjustment (they sum to the zero balance
// its fenced row keeps), so every shard is whole on its own; across shards, checkResidency.
func (r *run) checkLedgerInvariants(ctx context.Context, v *violations, seen map[string]int) error {
	for _, sh := range r.stack.ledgerShards() {
		if err := r.checkShardInvariants(ctx, v, seen, sh); err != nil {
			return err
		}
	}
	return r.checkResidency(ctx, v, seen)
}

func (r *run) checkShardInvariants(ctx context.Context, v *violations, seen map[string]int, sh ledgerShard) error {
	checks := []struct {
		label, query string
		kind         *int
	}{
		{"unbalanced transaction", `SELECT count(*) FROM (SELECT coalesce(entry_id, transaction_id) FROM ledger.postings GROUP BY coalesce(entry_id, transaction_id) HAVING sum(amount) <> 0) x`, &v.broken},
		{"journal entry without its platform posting", `SELECT count(DISTINCT p.entry_id) FROM ledger.postings p
			WHERE p.entry_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM ledger.postings q WHERE q.transaction_id = p.entry_id)`, &v.broken},
		{"transaction without postings", `SELECT count(*) FROM ledger.transactions t WHERE NOT EXISTS (SELECT 1 FROM ledger.postings p WHERE p.transaction_id = t.id)`, &v.broken},
		{"postings do not sum to zero", `SELECT CASE WHEN coalesce(sum(amount), 0) = 0 THEN 0 ELSE 1 END FROM ledger.postings`, &v.broken},
		{"stored balance differs from its postings", `SELECT count(*) FROM ledger.accounts a
			LEFT JOIN (SELECT account_id, sum(amount) AS s FROM ledger.postings GROUP BY account_id) p ON p.account_id = a.id
			WHERE a.balance <> coalesce(p.s, 0)`, &v.broken},
		{"organization balance differs from its transactions", `SELECT count(*) FROM ledger.accounts a
			LEFT JOIN (SELECT org_id, sum(amount) AS s FROM ledger.transactions GROUP BY org_id) t ON t.org_id = a.org_id
			WHERE a.kind = 'org' AND a.balance <> coalesce(t.s, 0)`, &v.broken},
		{"duplicate transaction", `SELECT count(*) FROM (SELECT org_id, idempotency_key FROM ledger.transactions
			GROUP BY org_id, idempotency_key HAVING count(*) > 1) d`, &v.doubled},
	}
	for _, c := range checks {
		n, err := shardInt(ctx, sh, c.query)
		if err != nil {
			return fmt.Errorf("checking %s on shard %s: %w", c.label, sh.name, err)
		}
		for range n {
			v.add(c.kind, seen, c.label, "found on ledger shard %s", sh.name)
		}
	}
	return nil
}

// checkResidency checks that every organization of the run lives on exactly one shard (its
// account there neither moved away nor frozen), as the shard map and the fences agree.
func (r *run) checkResidency(ctx context.Context, v *violations, seen map[string]int) error {
	shards := r.stack.ledgerShards()
	if len(shards) < 2 {
		return nil
	}
	homes := map[string]int{}
	for _, sh := range shards {
		cctx, cancel := context.WithTimeout(ctx, time.Minute)
		rows, err := sh.db.Query(cctx, `SELECT org_id, moved_to IS NULL AND NOT frozen FROM ledger.accounts
			WHERE kind = 'org' AND (org_id LIKE $1 OR org_id LIKE $2)`, r.tag+"-%", "rent-"+r.tag+"-%")
		if err != nil {
			cancel()
			return fmt.Errorf("reading the residency on shard %s: %w", sh.name, err)
		}
		for rows.Next() {
			var org string
			var resident bool
			if err := rows.Scan(&org, &resident); err != nil {
				rows.Close()
				cancel()
				return fmt.Errorf("reading the residency on shard %s: %w", sh.name, err)
			}
			homes[org] += 0
			if resident {
				homes[org]++
			}
		}
		rows.Close()
		cancel()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("reading the residency on shard %s: %w", sh.name, err)
		}
	}
	for org, n := range homes {
		if n != 1 {
			v.add(&v.broken, seen, "organization not resident on exactly one shard", "%s resident on %d shards", org, n)
		}
	}
	// A move books the balance into the source's shard_transfer account and out of the
	// target's: with no move in flight they cancel over the shards.
	transfer, err := r.sumShards(ctx, `SELECT coalesce(sum(balance), 0)::bigint FROM ledger.accounts WHERE name LIKE 'platform:shard\_transfer:%'`)
	if err != nil {
		return fmt.Errorf("summing the shard_transfer accounts: %w", err)
	}
	if transfer != 0 {
		v.add(&v.broken, seen, "shard_transfer accounts do not cancel over the shards", "they sum to %s", nanosText(transfer))
	}
	return nil
}

func (r *run) count(ctx context.Context, query string, args ...any) (int, error) {
	cctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	var n int
	if err := r.stack.DB.QueryRow(cctx, query, args...).Scan(&n); err != nil {
		return 0, err
	}
	return n, nil
}

// ledgerTransactions returns the transactions of the scenario's organizations, each read from the
// shard the organization lives on at the end: a move copies the history (same ids) to its target,
// and the copy left on the source is not counted a second time. A move's own adjustments (out of
// the source, into the target) cancel out and are no traffic of the suite: they are left out.
func (r *run) ledgerTransactions(ctx context.Context) ([]ledgerTx, error) {
	var out []ledgerTx
	shards := r.stack.ledgerShards()
	for _, sh := range shards {
		txs, err := r.shardTransactions(ctx, sh)
		if err != nil {
			return nil, fmt.Errorf("shard %s: %w", sh.name, err)
		}
		out = append(out, txs...)
		if len(shards) > 1 {
			left, err := shardInt(ctx, sh, `SELECT count(*) FROM ledger.transactions t JOIN ledger.accounts a ON a.kind = 'org' AND a.org_id = t.org_id
				WHERE t.org_id LIKE $1 AND (a.moved_to IS NOT NULL OR a.frozen)`, r.tag+"-%")
			if err != nil {
				return nil, fmt.Errorf("shard %s: %w", sh.name, err)
			}
			r.note("shard %s: %d transactions of the organizations living there checked, %d left by organizations that moved away not counted",
				sh.name, len(txs), left)
		}
	}
	return out, nil
}

// shardTransactions returns the transactions of the scenario's organizations resident on sh.
func (r *run) shardTransactions(ctx context.Context, sh ledgerShard) ([]ledgerTx, error) {
	cctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	rows, err := sh.db.Query(cctx, `SELECT t.id::text, t.org_id, t.kind, t.amount, t.idempotency_key, t.created_at
		FROM ledger.transactions t JOIN ledger.accounts a ON a.kind = 'org' AND a.org_id = t.org_id
		WHERE t.org_id LIKE $1 AND a.moved_to IS NULL AND NOT a.frozen
		AND NOT (t.kind = 'adjustment' AND t.reason = 'shard move' AND t.idempotency_key LIKE 'shard-move:%')`, r.tag+"-%")
	if err != nil {
		return nil, fmt.Errorf("reading the transactions: %w", err)
	}
	defer rows.Close()
	var out []ledgerTx
	for rows.Next() {
		var tx ledgerTx
		if err := rows.Scan(&tx.id, &tx.org, &tx.kind, &tx.amount, &tx.key, &tx.created); err != nil {
			return nil, fmt.Errorf("reading the transactions: %w", err)
		}
		out = append(out, tx)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading the transactions: %w", err)
	}
	return out, nil
}

// checkDebits checks every debit against the ledger: acknowledged ones exactly once with their
// amount and the transaction they were acknowledged with, refused ones not at all, none that
// nobody sent.
func (r *run) checkDebits(v *violations, seen map[string]int, txs []ledgerTx) {
	byKey := map[orgKey][]ledgerTx{}
	for _, tx := range txs {
		byKey[orgKey{tx.org, tx.key}] = append(byKey[orgKey{tx.org, tx.key}], tx)
	}
	r.rec.mu.Lock()
	defer r.rec.mu.Unlock()
	sent := map[orgKey]bool{}
	for _, d := range r.rec.debits {
		k := orgKey{d.org, d.key}
		sent[k] = true
		rows := byKey[k]
		switch {
		case len(rows) > 1:
			v.add(&v.doubled, seen, "debit written twice", "%s/%s: %d transactions", d.org, d.key, len(rows))
		case !d.ack.IsZero() && len(rows) == 0:
			v.add(&v.lost, seen, "acknowledged debit lost", "%s/%s (%s acknowledged at %s)", d.org, d.key, nanosText(d.amount), d.ack.Format(time.RFC3339Nano))
		case !d.ack.IsZero() && rows[0].amount != -d.amount:
			v.add(&v.broken, seen, "debit with another amount", "%s/%s: %s in the ledger, %s sent", d.org, d.key, nanosText(-rows[0].amount), nanosText(d.amount))
		case !d.ack.IsZero() && !d.txs[rows[0].id]:
			v.add(&v.broken, seen, "debit acknowledged with another transaction", "%s/%s: %s in the ledger", d.org, d.key, rows[0].id)
		case d.resolved && d.final != codes.OK && len(rows) > 0:
			v.add(&v.broken, seen, "refused debit written", "%s/%s refused with %s but in the ledger", d.org, d.key, d.final)
		}
		if len(d.txs) > 1 {
			v.add(&v.doubled, seen, "one key answered with two transactions", "%s/%s: %d ids", d.org, d.key, len(d.txs))
		}
	}
	for _, tx := range txs {
		if tx.kind == "debit" && !sent[orgKey{tx.org, tx.key}] {
			v.add(&v.doubled, seen, "debit nobody sent", "%s/%s %s", tx.org, tx.key, nanosText(-tx.amount))
		}
	}
}

// checkBalances checks that each debit organization's stored balance is its credits minus its
// acknowledged debits (and the debits whose outcome the suite never learnt but the ledger holds).
func (r *run) checkBalances(ctx context.Context, v *violations, seen map[string]int, txs []ledgerTx) error {
	written := map[orgKey]int64{}
	credits := map[string]int64{}
	for _, tx := range txs {
		written[orgKey{tx.org, tx.key}] = tx.amount
		if tx.amount > 0 {
			credits[tx.org] += tx.amount
		}
	}
	want := map[string]int64{}
	r.rec.mu.Lock()
	for _, d := range r.rec.debits {
		switch amount, ok := written[orgKey{d.org, d.key}]; {
		case !d.ack.IsZero():
			want[d.org] -= d.amount
		case !d.resolved && ok:
			want[d.org] += amount
		}
	}
	r.rec.mu.Unlock()
	for _, org := range r.debitOrgs {
		_, balance, _, err := r.stack.residentShard(ctx, org)
		if err != nil {
			return fmt.Errorf("reading the balance of %s: %w", org, err)
		}
		if expected := credits[org] + want[org]; balance != expected {
			v.add(&v.broken, seen, "balance is not credits minus acknowledged debits", "%s: %s stored, %s expected", org, nanosText(balance), nanosText(expected))
		}
	}
	return nil
}

// checkAuthorizations looks for Authorize calls allowed above what the organization could afford.
func (r *run) checkAuthorizations(v *violations, seen map[string]int, txs []ledgerTx) {
	r.rec.mu.Lock()
	defer r.rec.mu.Unlock()
	acked := map[orgKey]time.Time{}
	for _, d := range r.rec.debits {
		if !d.ack.IsZero() {
			acked[orgKey{d.org, d.key}] = d.ack
		}
	}
	hist := buildAvailability(txs, acked)
	for _, a := range r.rec.authzs {
		if open, over := failOpen(a, hist, r.grace); open {
			label := "fail-open Authorize"
			if a.quiet {
				label = "fail-open Authorize (quiet probe)"
			}
			v.add(&v.failOpen, seen, label, "%s: %s allowed at %s, at most %s available (%s too much; Authorize said %s available)",
				a.org, nanosText(a.amount), a.sent.Format("15:04:05.000"), nanosText(a.amount-over), nanosText(over), nanosText(a.available))
		}
	}
}

// checkCodes counts the calls answered Internal: an outage must reach callers as Unavailable
// (they retry it), and a caller's mistake as its own code.
func (r *run) checkCodes(v *violations, seen map[string]int) {
	r.rec.mu.Lock()
	defer r.rec.mu.Unlock()
	for _, c := range []struct {
		what string
		n    int
	}{{"Debit", r.rec.attempts[codes.Internal]}, {"Authorize", r.rec.authzFails[codes.Internal]}, {"CreateCheckoutSession", r.rec.checkoutFail[codes.Internal]}} {
		if c.n > 0 {
			v.add(&v.broken, seen, "Internal answered (an outage must be Unavailable)", "%s answered Internal %d times", c.what, c.n)
		}
	}
}

// checkTopUps checks that every paid top-up was credited exactly once, and that no webhook was
// acknowledged before its credit was durable.
func (r *run) checkTopUps(ctx context.Context, v *violations, seen map[string]int, txs []ledgerTx) error {
	byKey := map[orgKey][]ledgerTx{}
	for _, tx := range txs {
		byKey[orgKey{tx.org, tx.key}] = append(byKey[orgKey{tx.org, tx.key}], tx)
	}
	type row struct {
		status   string
		credited bool
		ledgerTx string
	}
	payments := map[string]row{}
	cctx, cancel := context.WithTimeout(ctx, queryTimeout)
	defer cancel()
	rows, err := r.stack.DB.Query(cctx, `SELECT id::text, status, credited_at IS NOT NULL, coalesce(ledger_transaction_id, '')
		FROM payments.payments WHERE org_id LIKE $1`, r.tag+"-%")
	if err != nil {
		return fmt.Errorf("reading the payments: %w", err)
	}
	for rows.Next() {
		var id string
		var p row
		if err := rows.Scan(&id, &p.status, &p.credited, &p.ledgerTx); err != nil {
			rows.Close()
			return fmt.Errorf("reading the payments: %w", err)
		}
		payments[id] = p
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("reading the payments: %w", err)
	}

	r.rec.mu.Lock()
	defer r.rec.mu.Unlock()
	for _, t := range r.rec.topUps {
		credits := byKey[orgKey{t.org, "checkout:" + t.sessionID}]
		p := payments[t.paymentID]
		early := !t.acked.IsZero() && t.checkedAck && !t.creditAtAck
		switch {
		case len(credits) == 0 && early:
			v.add(&v.lost, seen, "paid top-up never credited, its webhook acknowledged", "%s payment %s: 2xx at %s without a credit, never credited since (deliveries %v)",
				t.org, t.paymentID, t.acked.Format("15:04:05.000"), t.statuses)
		case len(credits) == 0:
			v.add(&v.lost, seen, "paid top-up never credited", "%s payment %s (session %s, deliveries %v)", t.org, t.paymentID, t.sessionID, t.statuses)
		case early:
			v.add(&v.lost, seen, "webhook acknowledged before its credit was durable", "%s payment %s answered 2xx at %s without a credit (credited later)",
				t.org, t.paymentID, t.acked.Format("15:04:05.000"))
		case len(credits) > 1:
			v.add(&v.doubled, seen, "top-up credited twice", "%s payment %s: %d credits", t.org, t.paymentID, len(credits))
		case credits[0].amount != t.amount:
			v.add(&v.broken, seen, "top-up credited with another amount", "%s payment %s: %s", t.org, t.paymentID, nanosText(credits[0].amount))
		case !p.credited || p.ledgerTx != credits[0].id || (p.status != "succeeded" && p.status != "refunded"):
			v.add(&v.broken, seen, "credited payment not recorded as paid", "%s payment %s: status %s, credited %t", t.org, t.paymentID, p.status, p.credited)
		}
	}
	return nil
}

// checkRefunds checks the refunds the scenario asked for: none left pending, each completed one
// taken back in the ledger exactly once, and every Stripe refund call of a refund under its own
// idempotency key.
func (r *run) checkRefunds(ctx context.Context, v *violations, seen map[string]int, txs []ledgerTx) error {
	if len(r.refunds) == 0 {
		return nil
	}
	byKey := map[string]int{}
	for _, tx := range txs {
		byKey[tx.key]++
	}
	cctx, cancel := context.WithTimeout(ctx, queryTimeout)
	defer cancel()
	for _, rf := range r.refunds {
		var id, st string
		var taken, amount int64
		err := r.stack.DB.QueryRow(cctx, `SELECT id::text, status, credits_taken_back_nanos, amount_nanos FROM payments.refunds WHERE idempotency_key = $1`,
			rf.key).Scan(&id, &st, &taken, &amount)
		if err != nil {
			if rf.code == codes.OK {
				v.add(&v.lost, seen, "acknowledged refund missing", "%s (%v)", rf.key, err)
			}
			continue // refused before anything was recorded
		}
		switch {
		case st == "pending":
			v.add(&v.lost, seen, "refund left pending", "refund %s of payment %s (request answered %s)", id, rf.paymentID, rf.code)
		case st == "succeeded" && taken > 0 && byKey["refund:"+id] != 1:
			v.add(&v.doubled, seen, "refund taken back other than once", "refund %s: %d ledger adjustments", id, byKey["refund:"+id])
		case st == "succeeded" && amount != rf.amount:
			v.add(&v.broken, seen, "refund of another amount", "refund %s: %s", id, nanosText(amount))
		}
	}
	for _, req := range r.stack.Stripe.Requests() {
		if req.Method != http.MethodPost || req.Path != "/v1/refunds" || req.At.Before(r.warmStart) {
			continue
		}
		if id := req.Form.Get("metadata[tally_refund_id]"); id != "" && req.IdempotencyKey != "refund:"+id {
			v.add(&v.doubled, seen, "Stripe refund call without the refund's idempotency key", "refund %s sent with key %q", id, req.IdempotencyKey)
		}
	}
	return nil
}

// checkEmails checks the "payment succeeded" emails of the mail organizations: one per paid
// credit, none left pending, each sent one in mailpit.
func (r *run) checkEmails(ctx context.Context, v *violations, seen map[string]int) error {
	// A move writes no event: each paid credit's event is on the shard it was credited on.
	expected, err := r.countShards(ctx, `SELECT count(*) FROM ledger.events WHERE org_id LIKE $1 AND kind = 'credit' AND credit_source = 'payment_clearing'`,
		r.tag+"-m%")
	if err != nil {
		return fmt.Errorf("counting paid credits: %w", err)
	}
	cctx, cancel := context.WithTimeout(ctx, queryTimeout)
	defer cancel()
	rows, err := r.stack.DB.Query(cctx, `SELECT id::text, status, message_id FROM notifications.emails WHERE org_id LIKE $1 AND kind = 'payment_succeeded'`,
		r.tag+"-m%")
	if err != nil {
		return fmt.Errorf("reading the emails: %w", err)
	}
	type email struct{ id, status, messageID string }
	var emails []email
	for rows.Next() {
		var e email
		if err := rows.Scan(&e.id, &e.status, &e.messageID); err != nil {
			rows.Close()
			return fmt.Errorf("reading the emails: %w", err)
		}
		emails = append(emails, e)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("reading the emails: %w", err)
	}
	for i := len(emails); i < expected; i++ {
		v.add(&v.lost, seen, "paid credit without its email", "%d paid credits, %d emails queued", expected, len(emails))
	}
	for i := expected; i < len(emails); i++ {
		v.add(&v.doubled, seen, "email queued twice", "%d paid credits, %d emails queued", expected, len(emails))
	}
	inbox, err := r.stack.mailpitMessageIDs(ctx)
	if err != nil {
		return err
	}
	resent := 0
	for _, e := range emails {
		id := strings.Trim(e.messageID, "<>")
		switch {
		case e.status == "pending":
			v.add(&v.lost, seen, "email never sent", "email %s still pending", e.id)
		case e.status == "failed":
			v.add(&v.broken, seen, "email given up", "email %s failed", e.id)
		case inbox[id] == 0:
			v.add(&v.lost, seen, "sent email not in the mailbox", "email %s (Message-ID %s)", e.id, id)
		case inbox[id] > 1:
			resent++
		}
	}
	r.note("%d paid credits to organizations with a subscriber, %d emails queued", expected, len(emails))
	r.mu.Lock()
	r.stats.EmailsExpected, r.stats.Emails, r.stats.EmailsResent = expected, len(emails), resent
	r.mu.Unlock()
	if resent > 0 {
		r.note("%d emails reached the mailbox more than once (SMTP delivery is at least once; same Message-ID)", resent)
	}
	return nil
}

// mailpitMessageIDs counts the messages in mailpit by Message-ID.
func (s *Stack) mailpitMessageIDs(ctx context.Context) (map[string]int, error) {
	out := map[string]int{}
	client := &http.Client{Timeout: queryTimeout}
	for start := 0; ; {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("%s/api/v1/messages?start=%d&limit=500", s.Mail.HTTPURL(), start), nil)
		if err != nil {
			return nil, fmt.Errorf("listing mailpit: %w", err)
		}
		resp, err := client.Do(req)
		if err != nil {
			return nil, fmt.Errorf("listing mailpit: %w", err)
		}
		var page struct {
			Total    int `json:"total"`
			Messages []struct {
				MessageID string `json:"MessageID"`
			} `json:"messages"`
		}
		err = json.NewDecoder(resp.Body).Decode(&page)
		_ = resp.Body.Close()
		if err != nil {
			return nil, fmt.Errorf("listing mailpit: %w", err)
		}
		for _, m := range page.Messages {
			out[strings.Trim(m.MessageID, "<>")]++
		}
		start += len(page.Messages)
		if len(page.Messages) == 0 || start >= page.Total {
			return out, nil
		}
	}
}

// nanosText formats nanos as USD.
func nanosText(n int64) string {
	sign := ""
	if n < 0 {
		sign, n = "-", -n
	}
	return fmt.Sprintf("%s%d.%09d USD", sign, n/unit, n%unit)
}
