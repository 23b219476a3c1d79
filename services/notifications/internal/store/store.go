// Package store keeps the notifications service's state in PostgreSQL: member settings and their
// low-credit alert state, the latest balance of each organization, the ledger event cursor and
// the email outbox. Every change of an alert state happens in the transaction that queues its
// email, and event processing also advances the cursor in that transaction.
//
// Lock order, to stay free of deadlocks: event_cursors, then org_balances rows (by org id),
// then member_settings rows.
package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tallyhq/tally/pkg/money"
	"github.com/tallyhq/tally/pkg/textcheck"
	"github.com/tallyhq/tally/services/notifications/internal/notify"
)

// LedgerCursor names the cursor of the ledger's event stream.
const LedgerCursor = "ledger"

// Store reads and writes the notifications schema.
type Store struct {
	pool *pgxpool.Pool
}

// New returns a Store over pool, whose search_path is the notifications schema.
func New(pool *pgxpool.Pool) (*Store, error) {
	if pool == nil {
		return nil, errors.New("store: pool is required")
	}
	return &Store{pool: pool}, nil
}

const settingsColumns = `org_id, member_id, account_email, email_override, low_credit_enabled, threshold_nanos,
threshold_currency, alert_state, alert_generation, credits_expiring_enabled, credits_expired_enabled,
payment_succeeded_enabled, rental_suspended_enabled, updated_at`

func scanSettings(row pgx.Row) (notify.Settings, error) {
	var st notify.Settings
	var threshold int64
	var state string
	err := row.Scan(&st.OrgID, &st.MemberID, &st.AccountEmail, &st.EmailOverride, &st.LowCreditEnabled, &threshold,
		&st.Threshold.Currency, &state, &st.AlertGeneration, &st.CreditsExpiringEnabled, &st.CreditsExpiredEnabled,
		&st.PaymentSucceededEnabled, &st.RentalSuspendedEnabled, &st.UpdatedAt)
	st.Threshold.Nanos, st.AlertState = money.Nanos(threshold), notify.AlertState(state)
	return st, err
}

func scanBalance(row pgx.Row) (*notify.Balance, error) {
	var b notify.Balance
	var bal, avail int64
	var exp *time.Time
	err := row.Scan(&b.OrgID, &b.Currency, &bal, &avail, &exp, &b.Seq)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	b.Balance, b.Available = money.Nanos(bal), money.Nanos(avail)
	if exp != nil {
		b.ExpiresAt = exp.UTC()
	}
	return &b, nil
}

const balanceColumns = `org_id, currency, balance, available, expires_at, last_seq`

// OrgBalance returns the latest known balance of org, or nil when none is known.
func (s *Store) OrgBalance(ctx context.Context, orgID string) (*notify.Balance, error) {
	b, err := scanBalance(s.pool.QueryRow(ctx, `SELECT `+balanceColumns+` FROM org_balances WHERE org_id = $1`, orgID))
	if err != nil {
		return nil, fmt.Errorf("reading balance of %s: %w", orgID, err)
	}
	return b, nil
}

// seenRefresh is how stale a member's last_seen_at may get before a call refreshes it: the
// directory's "last seen" is that coarse, and a member calling more often writes nothing.
const seenRefresh = "1 hour"

// maxNameBytes bounds the display name recorded from a token.
const maxNameBytes = 200

// register records m with the default preferences when first seen and refreshes their token
// email, name and role (and, at most every seenRefresh, when they were last seen) otherwise; a
// call that changes none of them writes nothing.
func register(ctx context.Context, tx pgx.Tx, m notify.Member) error {
	d := notify.DefaultPreferences(m.IsAdmin)
	_, err := tx.Exec(ctx, `INSERT INTO member_settings (org_id, member_id, is_admin, account_email, member_name, credits_expiring_enabled,
credits_expired_enabled, payment_succeeded_enabled, rental_suspended_enabled) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
ON CONFLICT (org_id, member_id) DO UPDATE SET account_email = EXCLUDED.account_email, is_admin = EXCLUDED.is_admin,
member_name = EXCLUDED.member_name, last_seen_at = now()
WHERE member_settings.account_email IS DISTINCT FROM EXCLUDED.account_email OR member_settings.is_admin IS DISTINCT FROM EXCLUDED.is_admin
OR member_settings.member_name IS DISTINCT FROM EXCLUDED.member_name OR member_settings.last_seen_at < now() - interval '`+seenRefresh+`'`,
		m.OrgID, m.MemberID, m.IsAdmin, m.AccountEmail, truncate(m.Name, maxNameBytes), d.CreditsExpiringEnabled, d.CreditsExpiredEnabled, d.PaymentSucceededEnabled, d.RentalSuspendedEnabled)
	if err != nil {
		return fmt.Errorf("registering member: %w", err)
	}
	return nil
}

// EnsureSettings returns m's settings, recording m with the defaults when first seen, and the
// organization's latest known balance (nil when unknown).
func (s *Store) EnsureSettings(ctx context.Context, m notify.Member) (notify.Settings, *notify.Balance, error) {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return notify.Settings{}, nil, fmt.Errorf("beginning transaction: %w", err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	if err := register(ctx, tx, m); err != nil {
		return notify.Settings{}, nil, err
	}
	st, err := scanSettings(tx.QueryRow(ctx, `SELECT `+settingsColumns+` FROM member_settings WHERE org_id = $1 AND member_id = $2`, m.OrgID, m.MemberID))
	if err != nil {
		return notify.Settings{}, nil, fmt.Errorf("reading settings: %w", err)
	}
	bal, err := scanBalance(tx.QueryRow(ctx, `SELECT `+balanceColumns+` FROM org_balances WHERE org_id = $1`, m.OrgID))
	if err != nil {
		return notify.Settings{}, nil, fmt.Errorf("reading balance: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return notify.Settings{}, nil, fmt.Errorf("committing registration: %w", err)
	}
	return st, bal, nil
}

// Settings returns the settings of a registered member, or notify.ErrNotFound.
func (s *Store) Settings(ctx context.Context, orgID, memberID string) (notify.Settings, *notify.Balance, error) {
	st, err := scanSettings(s.pool.QueryRow(ctx, `SELECT `+settingsColumns+` FROM member_settings WHERE org_id = $1 AND member_id = $2`, orgID, memberID))
	if errors.Is(err, pgx.ErrNoRows) {
		return notify.Settings{}, nil, fmt.Errorf("%w: member %s has no notification settings in %s", notify.ErrNotFound, textcheck.Quote(memberID), textcheck.Quote(orgID))
	}
	if err != nil {
		return notify.Settings{}, nil, fmt.Errorf("reading settings: %w", err)
	}
	bal, err := s.OrgBalance(ctx, orgID)
	return st, bal, err
}

// SettingsChange decides a settings change from the member's current settings and the
// organization's latest known balance (nil when unknown): the new settings and the emails to
// queue with them, or an error that leaves everything unchanged.
type SettingsChange func(before notify.Settings, bal *notify.Balance) (after notify.Settings, emails []notify.Email, err error)

// UpdateSettings registers m when first seen, locks their settings and applies change in one
// transaction: it writes the preferences and the alert state change returns, and queues its
// emails. seed is a balance read from the ledger, stored when the service knows none yet. The
// organization's balance row is read FOR SHARE, so the change and the evaluation of a
// concurrent ledger event are serialized: each sees the other's result.
func (s *Store) UpdateSettings(ctx context.Context, m notify.Member, seed *notify.Balance, change SettingsChange) (notify.Settings, *notify.Balance, error) {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return notify.Settings{}, nil, fmt.Errorf("beginning transaction: %w", err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	if seed != nil {
		if _, err := tx.Exec(ctx, `INSERT INTO org_balances (org_id, currency, balance, available, expires_at, last_seq)
VALUES ($1, $2, $3, $4, $5, 0) ON CONFLICT (org_id) DO NOTHING`,
			m.OrgID, seed.Currency, int64(seed.Balance), int64(seed.Available), nullTime(seed.ExpiresAt)); err != nil {
			return notify.Settings{}, nil, fmt.Errorf("seeding balance: %w", err)
		}
	}
	bal, err := scanBalance(tx.QueryRow(ctx, `SELECT `+balanceColumns+` FROM org_balances WHERE org_id = $1 FOR SHARE`, m.OrgID))
	if err != nil {
		return notify.Settings{}, nil, fmt.Errorf("reading balance: %w", err)
	}
	if err := register(ctx, tx, m); err != nil {
		return notify.Settings{}, nil, err
	}
	before, err := scanSettings(tx.QueryRow(ctx, `SELECT `+settingsColumns+` FROM member_settings WHERE org_id = $1 AND member_id = $2 FOR UPDATE`, m.OrgID, m.MemberID))
	if err != nil {
		return notify.Settings{}, nil, fmt.Errorf("locking settings: %w", err)
	}
	after, queued, err := change(before, bal)
	if err != nil {
		return notify.Settings{}, nil, err
	}
	p := after.Preferences
	tag, err := tx.Exec(ctx, `UPDATE member_settings SET email_override = $3, low_credit_enabled = $4, threshold_nanos = $5,
threshold_currency = $6, credits_expiring_enabled = $7, credits_expired_enabled = $8, payment_succeeded_enabled = $9,
rental_suspended_enabled = $10, alert_state = $11, alert_generation = $12, updated_at = now()
WHERE org_id = $1 AND member_id = $2 AND alert_state = $13 AND alert_generation = $14`,
		m.OrgID, m.MemberID, p.EmailOverride, p.LowCreditEnabled, int64(p.Threshold.Nanos), p.Threshold.Currency,
		p.CreditsExpiringEnabled, p.CreditsExpiredEnabled, p.PaymentSucceededEnabled, p.RentalSuspendedEnabled,
		string(after.AlertState), after.AlertGeneration, string(before.AlertState), before.AlertGeneration)
	if err != nil {
		return notify.Settings{}, nil, fmt.Errorf("updating settings: %w", err)
	}
	if tag.RowsAffected() != 1 {
		return notify.Settings{}, nil, errors.New("updating settings: alert state changed under a row lock")
	}
	if _, err := insertEmails(ctx, tx, queued); err != nil {
		return notify.Settings{}, nil, err
	}
	var updated time.Time
	if err := tx.QueryRow(ctx, `SELECT updated_at FROM member_settings WHERE org_id = $1 AND member_id = $2`, m.OrgID, m.MemberID).Scan(&updated); err != nil {
		return notify.Settings{}, nil, fmt.Errorf("reading settings: %w", err)
	}
	after.UpdatedAt = updated
	if err := tx.Commit(ctx); err != nil {
		return notify.Settings{}, nil, fmt.Errorf("committing settings: %w", err)
	}
	return after, bal, nil
}

// insertEmails queues emails, each under a new id, and returns how many were new; one whose
// idempotency key is already queued is skipped.
func insertEmails(ctx context.Context, tx pgx.Tx, emails []notify.Email) (int, error) {
	if len(emails) == 0 {
		return 0, nil
	}
	b := &pgx.Batch{}
	for _, e := range emails {
		data, err := json.Marshal(e.Data)
		if err != nil {
			return 0, fmt.Errorf("encoding email data: %w", err)
		}
		if e.ID == "" {
			e.ID = uuid.NewString()
		}
		b.Queue(`INSERT INTO emails (id, idempotency_key, kind, org_id, member_id, to_address, data, ledger_seq)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (idempotency_key) DO NOTHING`,
			e.ID, e.IdempotencyKey, string(e.Kind), e.OrgID, e.MemberID, e.To, data, e.LedgerSeq)
	}
	br := tx.SendBatch(ctx, b)
	n := 0
	for range emails {
		tag, err := br.Exec()
		if err != nil {
			_ = br.Close()
			return 0, fmt.Errorf("queueing emails: %w", err)
		}
		n += int(tag.RowsAffected())
	}
	if err := br.Close(); err != nil {
		return 0, fmt.Errorf("queueing emails: %w", err)
	}
	return n, nil
}

func nullTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}
