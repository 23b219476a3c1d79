package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tallyhq/tally/pkg/money"
	"github.com/tallyhq/tally/services/payments/internal/payment"
)

// InsertSetupSession records a setup session opened for an organization.
func (s *Store) InsertSetupSession(ctx context.Context, ss payment.SetupSession) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO setup_sessions (id, org_id, mode, member_id, member_name, member_email, url, expires_at, created_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`, ss.ID, ss.OrgID, string(ss.Mode), ss.Member.ID, ss.Member.Name, ss.Member.Email, ss.URL,
		ss.ExpiresAt.UTC(), s.clock())
	if err != nil {
		return fmt.Errorf("inserting setup session: %w", err)
	}
	return nil
}

const setupColumns = `id, org_id, mode, member_id, member_name, member_email, url, local_method, completed_at, expires_at, created_at,
expired_at`

func scanSetup(row pgx.Row) (payment.SetupSession, error) {
	var ss payment.SetupSession
	var mode string
	var completed, expired *time.Time
	err := row.Scan(&ss.ID, &ss.OrgID, &mode, &ss.Member.ID, &ss.Member.Name, &ss.Member.Email, &ss.URL, &ss.LocalMethod, &completed,
		&ss.ExpiresAt, &ss.CreatedAt, &expired)
	if errors.Is(err, pgx.ErrNoRows) {
		return payment.SetupSession{}, payment.ErrNotFound
	}
	if err != nil {
		return payment.SetupSession{}, fmt.Errorf("scanning setup session: %w", err)
	}
	ss.Mode, ss.CompletedAt, ss.ExpiredAt = payment.Mode(mode), deref(completed), deref(expired)
	return ss, nil
}

// SetupSession returns a setup session by id.
func (s *Store) SetupSession(ctx context.Context, id string) (payment.SetupSession, error) {
	ss, err := scanSetup(s.pool.QueryRow(ctx, `SELECT `+setupColumns+` FROM setup_sessions WHERE id = $1`, id))
	if err != nil {
		return payment.SetupSession{}, fmt.Errorf("setup session %s: %w", id, err)
	}
	return ss, nil
}

// ChooseLocalCard records the test card chosen on the test-mode page for an open, unexpired local
// setup session (the first choice stays); ErrFailedPrecondition when it can no longer be chosen.
func (s *Store) ChooseLocalCard(ctx context.Context, id, method string) (payment.SetupSession, error) {
	tag, err := s.pool.Exec(ctx, `UPDATE setup_sessions SET local_method = $2 WHERE id = $1 AND mode = 'local' AND local_method = ''
AND completed_at IS NULL AND expired_at IS NULL AND expires_at > $3`, id, method, s.clock())
	if err != nil {
		return payment.SetupSession{}, fmt.Errorf("choosing a test card: %w", err)
	}
	ss, err := s.SetupSession(ctx, id)
	if err != nil {
		return payment.SetupSession{}, err
	}
	if tag.RowsAffected() == 0 && ss.LocalMethod != method {
		return ss, fmt.Errorf("%w: setup session %s can no longer be completed", payment.ErrFailedPrecondition, id)
	}
	return ss, nil
}

// SetupsPastExpiry lists up to limit open setup sessions of mode whose expiry is before before.
func (s *Store) SetupsPastExpiry(ctx context.Context, mode payment.Mode, before time.Time, limit int) ([]payment.SetupSession, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+setupColumns+` FROM setup_sessions WHERE mode = $1 AND completed_at IS NULL
AND expired_at IS NULL AND expires_at < $2 ORDER BY expires_at LIMIT $3`, string(mode), before.UTC(), limit)
	if err != nil {
		return nil, fmt.Errorf("listing expired setup sessions: %w", err)
	}
	defer rows.Close()
	var out []payment.SetupSession
	for rows.Next() {
		ss, err := scanSetup(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, ss)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("listing expired setup sessions: %w", err)
	}
	return out, nil
}

// ExpireSetup marks an open setup session expired: it can save no card any more. expired is
// false when it was completed or expired before.
func (s *Store) ExpireSetup(ctx context.Context, id string) (expired bool, err error) {
	tag, err := s.pool.Exec(ctx, `UPDATE setup_sessions SET expired_at = $2 WHERE id = $1 AND completed_at IS NULL AND expired_at IS NULL`,
		id, s.clock())
	if err != nil {
		return false, fmt.Errorf("expiring setup session %s: %w", id, err)
	}
	return tag.RowsAffected() == 1, nil
}

// Customer returns the organization's processor customer of mode ("" when none yet).
func (s *Store) Customer(ctx context.Context, orgID string, mode payment.Mode) (string, error) {
	var id string
	err := s.pool.QueryRow(ctx, `SELECT customer_id FROM processor_customers WHERE org_id = $1 AND mode = $2`, orgID, string(mode)).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("reading the customer of organization %s: %w", orgID, err)
	}
	return id, nil
}

// KeepCustomer records the organization's processor customer of mode unless one is recorded.
func (s *Store) KeepCustomer(ctx context.Context, orgID string, mode payment.Mode, customerID string) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO processor_customers (org_id, mode, customer_id, created_at) VALUES ($1, $2, $3, $4)
ON CONFLICT (org_id, mode) DO NOTHING`, orgID, string(mode), customerID, s.clock())
	if err != nil {
		return fmt.Errorf("recording the customer of organization %s: %w", orgID, err)
	}
	return nil
}

// SaveMethod completes setup session sessionID with the card it saved, replacing the
// organization's card, once: saved is false when the session was completed or expired before.
func (s *Store) SaveMethod(ctx context.Context, m payment.SavedMethod) (saved bool, err error) {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return false, fmt.Errorf("beginning transaction: %w", err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	now := s.clock()
	tag, err := tx.Exec(ctx, `UPDATE setup_sessions SET completed_at = $2 WHERE id = $1 AND org_id = $3 AND completed_at IS NULL
AND expired_at IS NULL`,
		m.SetupSessionID, now, m.OrgID)
	if err != nil {
		return false, fmt.Errorf("completing setup session: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return false, nil
	}
	_, err = tx.Exec(ctx, `INSERT INTO payment_methods (org_id, mode, customer_id, payment_method_id, brand, last4, exp_month, exp_year,
setup_session_id, member_id, member_name, member_email, saved_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
ON CONFLICT (org_id) DO UPDATE SET mode = $2, customer_id = $3, payment_method_id = $4, brand = $5, last4 = $6, exp_month = $7,
exp_year = $8, setup_session_id = $9, member_id = $10, member_name = $11, member_email = $12, saved_at = $13`,
		m.OrgID, string(m.Mode), m.CustomerID, m.PaymentMethodID, m.Brand, m.Last4, m.ExpMonth, m.ExpYear, m.SetupSessionID,
		m.SavedBy.ID, m.SavedBy.Name, m.SavedBy.Email, now)
	if err != nil {
		return false, fmt.Errorf("saving payment method: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return false, fmt.Errorf("committing payment method: %w", err)
	}
	return true, nil
}

const methodColumns = `org_id, mode, customer_id, payment_method_id, brand, last4, exp_month, exp_year, setup_session_id,
member_id, member_name, member_email, saved_at`

func scanMethod(row pgx.Row) (payment.SavedMethod, error) {
	var m payment.SavedMethod
	var mode string
	err := row.Scan(&m.OrgID, &mode, &m.CustomerID, &m.PaymentMethodID, &m.Brand, &m.Last4, &m.ExpMonth, &m.ExpYear, &m.SetupSessionID,
		&m.SavedBy.ID, &m.SavedBy.Name, &m.SavedBy.Email, &m.SavedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return payment.SavedMethod{}, payment.ErrNotFound
	}
	if err != nil {
		return payment.SavedMethod{}, fmt.Errorf("scanning payment method: %w", err)
	}
	m.Mode, m.SavedAt = payment.Mode(mode), m.SavedAt.UTC()
	return m, nil
}

// PaymentMethod returns the organization's saved card (ErrNotFound when none).
func (s *Store) PaymentMethod(ctx context.Context, orgID string) (payment.SavedMethod, error) {
	return scanMethod(s.pool.QueryRow(ctx, `SELECT `+methodColumns+` FROM payment_methods WHERE org_id = $1`, orgID))
}

// DeleteMethod forgets the organization's saved card.
func (s *Store) DeleteMethod(ctx context.Context, orgID string) error {
	if _, err := s.pool.Exec(ctx, `DELETE FROM payment_methods WHERE org_id = $1`, orgID); err != nil {
		return fmt.Errorf("removing payment method: %w", err)
	}
	return nil
}

const ruleColumns = `org_id, enabled, currency, threshold_nanos, amount_nanos, target_nanos, monthly_cap_nanos, state,
coalesce(in_flight::text, ''), consecutive_failures, disabled_reason, disabled_at, updated_by, updated_by_email, updated_at`

func scanRule(row pgx.Row) (payment.RechargeRule, error) {
	var r payment.RechargeRule
	var threshold, amount, target, limit int64
	var state string
	var disabled *time.Time
	err := row.Scan(&r.OrgID, &r.Enabled, &r.Currency, &threshold, &amount, &target, &limit, &state, &r.InFlight,
		&r.ConsecutiveFailures, &r.DisabledReason, &disabled, &r.UpdatedBy.ID, &r.UpdatedBy.Email, &r.UpdatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return payment.RechargeRule{}, payment.ErrNotFound
	}
	if err != nil {
		return payment.RechargeRule{}, fmt.Errorf("scanning recharge rule: %w", err)
	}
	r.Threshold, r.Amount, r.Target, r.MonthlyCap = money.Nanos(threshold), money.Nanos(amount), money.Nanos(target), money.Nanos(limit)
	r.State, r.DisabledAt, r.UpdatedAt = payment.RuleState(state), deref(disabled), r.UpdatedAt.UTC()
	return r, nil
}

// monthStart is the start of now's calendar month (UTC), where the monthly cap starts over.
func monthStart(now time.Time) time.Time {
	now = now.UTC()
	return time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC)
}

// monthSpent is what the organization's automatic payments of this month charged or are charging.
func monthSpent(ctx context.Context, q querier, orgID string, now time.Time) (money.Nanos, error) {
	var n int64
	err := q.QueryRow(ctx, `SELECT coalesce(sum(amount_nanos), 0)::bigint FROM payments WHERE org_id = $1 AND automatic
AND created_at >= $2 AND status NOT IN ('failed', 'expired')`, orgID, monthStart(now)).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("summing this month's recharges: %w", err)
	}
	return money.Nanos(n), nil
}

// RechargeRule returns the organization's rule with this month's spend (ErrNotFound when none).
func (s *Store) RechargeRule(ctx context.Context, orgID string) (payment.RechargeRule, error) {
	r, err := scanRule(s.pool.QueryRow(ctx, `SELECT `+ruleColumns+` FROM recharge_rules WHERE org_id = $1`, orgID))
	if err != nil {
		return payment.RechargeRule{}, err
	}
	r.MonthSpent, err = monthSpent(ctx, s.pool, orgID, s.clock())
	return r, err
}

// PutRule replaces the settings of the organization's rule: the failures are reset, the rule
// re-armed, a recharge in flight and the last event seen are kept.
func (s *Store) PutRule(ctx context.Context, orgID string, r payment.RuleSettings, by payment.Member) (payment.RechargeRule, error) {
	_, err := s.pool.Exec(ctx, `INSERT INTO recharge_rules (org_id, enabled, currency, threshold_nanos, amount_nanos, target_nanos,
monthly_cap_nanos, updated_by, updated_by_email, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
ON CONFLICT (org_id) DO UPDATE SET enabled = $2, currency = $3, threshold_nanos = $4, amount_nanos = $5, target_nanos = $6,
monthly_cap_nanos = $7, updated_by = $8, updated_by_email = $9, updated_at = $10, state = 'armed', consecutive_failures = 0,
disabled_reason = '', disabled_at = NULL`,
		orgID, r.Enabled, r.Currency, int64(r.Threshold), int64(r.Amount), int64(r.Target), int64(r.MonthlyCap), by.ID, by.Email, s.clock())
	if err != nil {
		return payment.RechargeRule{}, fmt.Errorf("saving recharge rule: %w", err)
	}
	return s.RechargeRule(ctx, orgID)
}

// RechargeDecide decides what one observed balance does to a locked rule: it is given the rule
// (with this month's spend and the last sequence applied of the event's shard) and whether a card
// is saved.
type RechargeDecide func(r payment.RechargeRule, hasMethod bool) payment.RechargeDecision

// BalanceEvent names a ledger event: its organization, and its sequence on its shard.
type BalanceEvent struct {
	OrgID string
	Shard string
	Seq   int64
}

// Claim is what ApplyBalance did.
type Claim struct {
	// Found is false when the organization has no rule.
	Found bool
	// State is the rule's state after the event.
	State payment.RuleState
	// Payment is the automatic payment to charge when Fired.
	Payment payment.Payment
	Fired   bool
}

// ApplyBalance applies an observed balance of ledger event ev to the organization's rule under
// its row lock: the claim of a recharge. When decide fires, the automatic payment is inserted
// (due to be charged at once, the charge leased until chargeLease) and the rule marked fired with
// it in flight, in the same transaction, before any call to the processor. Events not newer than
// the last one applied of their shard change nothing (decide sees that sequence as LastSeq).
func (s *Store) ApplyBalance(ctx context.Context, ev BalanceEvent, decide RechargeDecide, chargeLease time.Time) (Claim, error) {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return Claim{}, fmt.Errorf("beginning transaction: %w", err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	r, m, hasMethod, err := s.lockRule(ctx, tx, ev)
	if errors.Is(err, payment.ErrNotFound) {
		return Claim{}, nil
	}
	if err != nil {
		return Claim{}, err
	}
	d := decide(r, hasMethod)
	c := Claim{Found: true, State: r.State}
	var inFlight *string
	switch d.Action {
	case payment.RechargeNone:
		return c, nil
	case payment.RechargeRearm:
		c.State = payment.RuleArmed
	case payment.RechargeCapped:
		c.State = payment.RuleFired
	case payment.RechargeFire:
		if c.Payment, err = s.insertRecharge(ctx, tx, r, m, d.Amount, chargeLease); err != nil {
			return Claim{}, err
		}
		c.State, inFlight, c.Fired = payment.RuleFired, &c.Payment.ID, true
	}
	_, err = tx.Exec(ctx, `UPDATE recharge_rules SET state = $2, in_flight = coalesce($3::uuid, in_flight) WHERE org_id = $1`,
		ev.OrgID, string(c.State), inFlight)
	if err != nil {
		return Claim{}, fmt.Errorf("updating recharge rule: %w", err)
	}
	_, err = tx.Exec(ctx, `INSERT INTO recharge_rule_seqs (org_id, shard, seq) VALUES ($1, $2, $3)
ON CONFLICT (org_id, shard) DO UPDATE SET seq = greatest(recharge_rule_seqs.seq, excluded.seq)`, ev.OrgID, ev.Shard, ev.Seq)
	if err != nil {
		return Claim{}, fmt.Errorf("recording the event applied to recharge rule: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return Claim{}, fmt.Errorf("committing recharge claim: %w", err)
	}
	if c.Fired {
		c.Payment, err = s.Payment(ctx, "", c.Payment.ID)
	}
	return c, err
}

// lockRule locks the organization's rule and reads what deciding on ev needs: the last sequence
// applied of ev's shard, and, only when the rule could fire, this month's spend and the card.
func (s *Store) lockRule(ctx context.Context, tx pgx.Tx, ev BalanceEvent) (r payment.RechargeRule, m payment.SavedMethod, hasMethod bool, err error) {
	r, err = scanRule(tx.QueryRow(ctx, `SELECT `+ruleColumns+` FROM recharge_rules WHERE org_id = $1 FOR UPDATE`, ev.OrgID))
	if err != nil {
		return r, m, false, err
	}
	err = tx.QueryRow(ctx, `SELECT coalesce((SELECT seq FROM recharge_rule_seqs WHERE org_id = $1 AND shard = $2), 0)`,
		ev.OrgID, ev.Shard).Scan(&r.LastSeq)
	if err != nil {
		return r, m, false, fmt.Errorf("reading the last event applied to recharge rule: %w", err)
	}
	if ev.Seq <= r.LastSeq || !r.Enabled || r.State != payment.RuleArmed || r.InFlight != "" {
		return r, m, false, nil // it cannot fire: neither the spend nor the card matters
	}
	if r.MonthSpent, err = monthSpent(ctx, tx, ev.OrgID, s.clock()); err != nil {
		return r, m, false, err
	}
	m, err = scanMethod(tx.QueryRow(ctx, `SELECT `+methodColumns+` FROM payment_methods WHERE org_id = $1`, ev.OrgID))
	if errors.Is(err, payment.ErrNotFound) {
		return r, m, false, nil
	}
	return r, m, err == nil, err
}

// insertRecharge inserts the automatic payment of a recharge the rule fired.
func (s *Store) insertRecharge(ctx context.Context, tx pgx.Tx, r payment.RechargeRule, m payment.SavedMethod, n money.Nanos,
	chargeLease time.Time) (payment.Payment, error) {
	amount := money.Money{Nanos: n, Currency: r.Currency}
	minor, err := payment.ToMinor(amount)
	if err != nil {
		return payment.Payment{}, err
	}
	p := payment.Payment{ID: NewID(), OrgID: r.OrgID, Mode: m.Mode, Amount: amount, AmountMinor: minor, Automatic: true,
		Member: payment.Member{ID: "auto-recharge", Name: "Auto-recharge", Email: r.UpdatedBy.Email}}
	_, err = tx.Exec(ctx, `INSERT INTO payments (id, org_id, mode, amount_nanos, amount_minor, currency, status, member_id, member_name,
member_email, checkout_session_id, payment_method, automatic, charge_after, created_at, updated_at)
VALUES ($1, $2, $3, $4, $5, $6, 'pending', $7, $8, $9, $10, 'card', true, $11, $12, $12)`,
		p.ID, r.OrgID, string(p.Mode), int64(amount.Nanos), minor, amount.Currency, p.Member.ID, p.Member.Name, p.Member.Email,
		payment.RechargeSessionID(p.ID), chargeLease.UTC(), s.clock())
	if err != nil {
		return payment.Payment{}, fmt.Errorf("inserting automatic payment: %w", err)
	}
	return p, nil
}

// EnabledRules returns what the recharge trigger keeps in memory of every enabled rule, by organization.
func (s *Store) EnabledRules(ctx context.Context) (map[string]payment.RuleTrigger, error) {
	rows, err := s.pool.Query(ctx, `SELECT org_id, currency, threshold_nanos, updated_at FROM recharge_rules WHERE enabled`)
	if err != nil {
		return nil, fmt.Errorf("listing enabled recharge rules: %w", err)
	}
	defer rows.Close()
	out := map[string]payment.RuleTrigger{}
	for rows.Next() {
		var org string
		var t payment.RuleTrigger
		var threshold int64
		if err := rows.Scan(&org, &t.Currency, &threshold, &t.UpdatedAt); err != nil {
			return nil, fmt.Errorf("listing enabled recharge rules: %w", err)
		}
		t.Threshold = money.Nanos(threshold)
		out[org] = t
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("listing enabled recharge rules: %w", err)
	}
	return out, nil
}

// ClaimCharges claims up to limit automatic payments whose charge is due (a replica died or a
// processor call failed mid-recharge), moving each ahead by lease, and returns them.
func (s *Store) ClaimCharges(ctx context.Context, limit int, lease time.Duration) ([]payment.Payment, error) {
	return s.claimPayments(ctx, "claiming due charges", `WITH due AS (
SELECT id FROM payments WHERE charge_after <= $1 ORDER BY charge_after LIMIT $2 FOR UPDATE SKIP LOCKED)
UPDATE payments p SET charge_after = $3 FROM due WHERE p.id = due.id RETURNING p.id`, limit, lease)
}

// ClaimPendingCharges claims up to limit automatic payments whose charge the processor left
// pending (processing) past their check time with no webhook settling them, moving each ahead by
// lease, and returns them.
func (s *Store) ClaimPendingCharges(ctx context.Context, limit int, lease time.Duration) ([]payment.Payment, error) {
	return s.claimPayments(ctx, "claiming pending charges", `WITH due AS (
SELECT id FROM payments WHERE check_after <= $1 ORDER BY check_after LIMIT $2 FOR UPDATE SKIP LOCKED)
UPDATE payments p SET check_after = $3 FROM due WHERE p.id = due.id RETURNING p.id`, limit, lease)
}

// claimPayments runs claim (due before $1, at most $2, moved ahead to $3 = now + lease) and
// returns the payments it claimed; op names it in errors.
func (s *Store) claimPayments(ctx context.Context, op, claim string, limit int, lease time.Duration) ([]payment.Payment, error) {
	now := s.clock()
	rows, err := s.pool.Query(ctx, claim, now, limit, now.Add(lease))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	return s.paymentsByID(ctx, ids)
}

// RetryCharge moves a charge that failed on a dependency to at.
func (s *Store) RetryCharge(ctx context.Context, paymentID string, at time.Time) error {
	_, err := s.pool.Exec(ctx, `UPDATE payments SET charge_after = $2 WHERE id = $1 AND charge_after IS NOT NULL`, paymentID, at.UTC())
	if err != nil {
		return fmt.Errorf("rescheduling charge of payment %s: %w", paymentID, err)
	}
	return nil
}

// ChargeRecord is the processor's answer to an automatic payment's charge, with what it did to the rule.
type ChargeRecord struct {
	Charge payment.ChargeResult
	// After updates the locked rule whose recharge this was.
	After func(r payment.RechargeRule) (payment.RechargeRule, payment.ChargeOutcome)
	// FulfilAt is when the retry worker credits a successful charge nobody credited.
	FulfilAt time.Time
	// CheckAt is when the retry worker looks a pending charge up at the processor, should its
	// webhook not have settled it.
	CheckAt time.Time
}

// RecordCharge records the answer to an automatic payment's charge once, under the payment's
// and its rule's row locks: the payment intent; a failure fails the payment and makes its email
// due; the rule's recharge ends. recorded is false (nothing written) when it was recorded before.
func (s *Store) RecordCharge(ctx context.Context, paymentID string, c ChargeRecord) (p payment.Payment, recorded bool, err error) {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return payment.Payment{}, false, fmt.Errorf("beginning transaction: %w", err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	var due *time.Time
	var orgID string
	err = tx.QueryRow(ctx, `SELECT charge_after, org_id FROM payments WHERE id = $1 AND automatic FOR UPDATE`, paymentID).Scan(&due, &orgID)
	if errors.Is(err, pgx.ErrNoRows) {
		return payment.Payment{}, false, fmt.Errorf("automatic payment %s: %w", paymentID, payment.ErrNotFound)
	}
	if err != nil {
		return payment.Payment{}, false, fmt.Errorf("locking payment %s: %w", paymentID, err)
	}
	r, err := scanRule(tx.QueryRow(ctx, `SELECT `+ruleColumns+` FROM recharge_rules WHERE org_id = $1 FOR UPDATE`, orgID))
	if err != nil && !errors.Is(err, payment.ErrNotFound) {
		return payment.Payment{}, false, err
	}
	inFlight := err == nil && r.InFlight == paymentID
	if due == nil && !inFlight {
		// Recorded before (a final answer ends the recharge; a pending one clears the charge).
		p, err = s.Payment(ctx, "", paymentID)
		return p, false, err
	}
	now := s.clock()
	var outcome payment.ChargeOutcome
	if inFlight {
		r, outcome = c.After(r)
		_, err = tx.Exec(ctx, `UPDATE recharge_rules SET in_flight = $2::uuid, consecutive_failures = $3, enabled = $4, disabled_reason = $5,
disabled_at = $6 WHERE org_id = $1`, orgID, nullString(r.InFlight), r.ConsecutiveFailures, r.Enabled, r.DisabledReason, nullTime(r.DisabledAt))
		if err != nil {
			return payment.Payment{}, false, fmt.Errorf("updating recharge rule: %w", err)
		}
	}
	switch c.Charge.Status {
	case payment.ChargePending:
		_, err = tx.Exec(ctx, `UPDATE payments SET charge_after = NULL, payment_intent_id = coalesce(payment_intent_id, $2), updated_at = $3,
check_after = $4 WHERE id = $1`, paymentID, nullString(c.Charge.PaymentIntentID), now, nullTime(c.CheckAt))
	case payment.ChargeSucceeded:
		// Paid: the credit is due (claim before the call), so that the retry worker credits it
		// should the caller die before the ledger answers.
		_, err = tx.Exec(ctx, `UPDATE payments SET charge_after = NULL, payment_intent_id = coalesce(payment_intent_id, $2), updated_at = $3,
check_after = NULL, fulfil_after = CASE WHEN credited_at IS NULL THEN coalesce(fulfil_after, $4) END WHERE id = $1`,
			paymentID, nullString(c.Charge.PaymentIntentID), now, c.FulfilAt.UTC())
	default:
		_, err = tx.Exec(ctx, `UPDATE payments SET charge_after = NULL, payment_intent_id = coalesce(payment_intent_id, $2), updated_at = $3,
check_after = NULL, status = CASE WHEN credited_at IS NULL THEN 'failed' ELSE status END,
failure_reason = $4, failure_message = $5, notify_after = $3, failures_in_row = $6, disabled_rule = $7 WHERE id = $1`,
			paymentID, nullString(c.Charge.PaymentIntentID), now, string(c.Charge.Status), truncate(c.Charge.Message, maxErrorLength),
			outcome.Failures, outcome.Disabled)
	}
	if err != nil {
		return payment.Payment{}, false, fmt.Errorf("recording charge of payment %s: %w", paymentID, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return payment.Payment{}, false, fmt.Errorf("committing charge of payment %s: %w", paymentID, err)
	}
	p, err = s.Payment(ctx, "", paymentID)
	return p, true, err
}

// FailureNotice is the email owed for a failed automatic payment.
type FailureNotice struct {
	Payment    payment.Payment
	Failures   int
	Disabled   bool
	Recipients []string
}

// ClaimFailureNotices claims up to limit failed automatic payments whose email is due, moving
// each ahead by lease, with the admins to email: who last saved the rule and who saved the card.
func (s *Store) ClaimFailureNotices(ctx context.Context, limit int, lease time.Duration) ([]FailureNotice, error) {
	now := s.clock()
	rows, err := s.pool.Query(ctx, `WITH due AS (
SELECT id FROM payments WHERE notify_after <= $1 ORDER BY notify_after LIMIT $2 FOR UPDATE SKIP LOCKED)
UPDATE payments p SET notify_after = $3 FROM due WHERE p.id = due.id RETURNING p.id, p.failures_in_row, p.disabled_rule,
array_remove(ARRAY(SELECT DISTINCT e FROM unnest(ARRAY[
  (SELECT r.updated_by_email FROM recharge_rules r WHERE r.org_id = p.org_id),
  (SELECT m.member_email FROM payment_methods m WHERE m.org_id = p.org_id)]) AS e WHERE e <> '' ORDER BY e), NULL)`,
		now, limit, now.Add(lease))
	if err != nil {
		return nil, fmt.Errorf("claiming failure notices: %w", err)
	}
	type claimed struct {
		id       string
		failures int
		disabled bool
		to       []string
	}
	var cs []claimed
	for rows.Next() {
		var c claimed
		if err := rows.Scan(&c.id, &c.failures, &c.disabled, &c.to); err != nil {
			rows.Close()
			return nil, fmt.Errorf("claiming failure notices: %w", err)
		}
		cs = append(cs, c)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("claiming failure notices: %w", err)
	}
	out := make([]FailureNotice, 0, len(cs))
	for _, c := range cs {
		p, err := s.Payment(ctx, "", c.id)
		if err != nil {
			return nil, err
		}
		out = append(out, FailureNotice{Payment: p, Failures: c.failures, Disabled: c.disabled, Recipients: c.to})
	}
	return out, nil
}

// FailureNotified records that a failed automatic payment's email was handed over.
func (s *Store) FailureNotified(ctx context.Context, paymentID string) error {
	if _, err := s.pool.Exec(ctx, `UPDATE payments SET notify_after = NULL WHERE id = $1`, paymentID); err != nil {
		return fmt.Errorf("recording failure notice of payment %s: %w", paymentID, err)
	}
	return nil
}

// RechargeCursor returns the ledger position the recharge trigger resumes after ("": the beginning).
func (s *Store) RechargeCursor(ctx context.Context) (string, error) {
	rows, err := s.pool.Query(ctx, `SELECT shard, seq FROM recharge_cursors`)
	if err != nil {
		return "", fmt.Errorf("reading recharge cursor: %w", err)
	}
	defer rows.Close()
	c := payment.LedgerCursor{}
	for rows.Next() {
		var shard string
		var seq int64
		if err := rows.Scan(&shard, &seq); err != nil {
			return "", fmt.Errorf("reading recharge cursor: %w", err)
		}
		c[shard] = seq
	}
	if err := rows.Err(); err != nil {
		return "", fmt.Errorf("reading recharge cursor: %w", err)
	}
	return c.String(), nil
}

// AdvanceRechargeCursor moves the cursor forward to c, shard by shard (never back: replicas share it).
func (s *Store) AdvanceRechargeCursor(ctx context.Context, c payment.LedgerCursor) error {
	shards, seqs := make([]string, 0, len(c)), make([]int64, 0, len(c))
	for shard, seq := range c {
		shards, seqs = append(shards, shard), append(seqs, seq)
	}
	_, err := s.pool.Exec(ctx, `INSERT INTO recharge_cursors (shard, seq) SELECT * FROM unnest($1::text[], $2::bigint[])
ON CONFLICT (shard) DO UPDATE SET seq = greatest(recharge_cursors.seq, excluded.seq)`, shards, seqs)
	if err != nil {
		return fmt.Errorf("advancing recharge cursor: %w", err)
	}
	return nil
}
