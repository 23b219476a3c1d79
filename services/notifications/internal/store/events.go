package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tallyhq/tally/services/notifications/internal/notify"
)

// Cursor returns the position after the last ledger event applied: the cursor of that event
// ("main:42", "a:3,b:9"), a bare sequence of the one-shard ledger stored before cursors existed
// ("42"), or "" for the start of the stream.
func (s *Store) Cursor(ctx context.Context) (string, error) {
	var pos string
	if err := s.pool.QueryRow(ctx, `SELECT position FROM event_cursors WHERE name = $1`, LedgerCursor).Scan(&pos); err != nil {
		return "", fmt.Errorf("reading event cursor: %w", err)
	}
	return pos, nil
}

// ApplyResult says what one UpdateOrgMembers call did.
type ApplyResult struct {
	// Cursor is the cursor of the last event applied.
	Cursor string
	// Queued counts the emails queued.
	Queued int
}

// MembersChange decides what one organization's events, in sequence order, do to its members
// (their settings as stored, ordered by member id): the members whose alert changed and the
// emails to queue.
type MembersChange func(members []notify.Settings, events []notify.LedgerEvent) (changed []notify.Settings, emails []notify.Email)

// UpdateOrgMembers applies events, which follow the cursor position from, in one transaction:
// per organization (in org id order) it stores the latest balance, locks the members, applies
// change, writes the alert states it changed and queues its emails; then it advances the
// cursor. The cursor row is locked first and must still be at from, so two followers never
// apply the same events: the second gets notify.ErrCursorMoved and must resume from the stored
// cursor. Alert states are written with conditional updates as well.
func (s *Store) UpdateOrgMembers(ctx context.Context, from string, events []notify.LedgerEvent, change MembersChange) (ApplyResult, error) {
	if len(events) == 0 {
		return ApplyResult{Cursor: from}, nil
	}
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return ApplyResult{}, fmt.Errorf("beginning transaction: %w", err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	var cur string
	if err := tx.QueryRow(ctx, `SELECT position FROM event_cursors WHERE name = $1 FOR UPDATE`, LedgerCursor).Scan(&cur); err != nil {
		return ApplyResult{}, fmt.Errorf("locking event cursor: %w", err)
	}
	if cur != from {
		return ApplyResult{}, fmt.Errorf("%w: expected %q, found %q", notify.ErrCursorMoved, from, cur)
	}
	byOrg, err := groupByOrg(events)
	if err != nil {
		return ApplyResult{}, err
	}
	last := events[len(events)-1].Cursor
	orgs := make([]string, 0, len(byOrg))
	for org := range byOrg {
		orgs = append(orgs, org)
	}
	slices.Sort(orgs)
	var queued []notify.Email
	for _, org := range orgs {
		emails, err := updateOrg(ctx, tx, org, byOrg[org], change)
		if err != nil {
			return ApplyResult{}, err
		}
		queued = append(queued, emails...)
	}
	n, err := insertEmails(ctx, tx, queued)
	if err != nil {
		return ApplyResult{}, err
	}
	tag, err := tx.Exec(ctx, `UPDATE event_cursors SET position = $2, updated_at = now() WHERE name = $1 AND position = $3`, LedgerCursor, last, from)
	if err != nil {
		return ApplyResult{}, fmt.Errorf("advancing event cursor: %w", err)
	}
	if tag.RowsAffected() != 1 {
		return ApplyResult{}, fmt.Errorf("%w: cursor no longer at %q", notify.ErrCursorMoved, from)
	}
	if err := tx.Commit(ctx); err != nil {
		return ApplyResult{}, fmt.Errorf("committing events: %w", err)
	}
	return ApplyResult{Cursor: last, Queued: n}, nil
}

// groupByOrg checks that every event carries its cursor and that each shard's sequences
// increase (sequences are per shard: two shards' numbers are unrelated), and groups the events
// by organization, each in stream order.
func groupByOrg(events []notify.LedgerEvent) (map[string][]notify.LedgerEvent, error) {
	byOrg := map[string][]notify.LedgerEvent{}
	last := map[string]int64{}
	for _, e := range events {
		if e.Cursor == "" {
			return nil, fmt.Errorf("event %s:%d carries no cursor", e.Shard, e.Seq)
		}
		if prev, ok := last[e.Shard]; ok && e.Seq <= prev {
			return nil, fmt.Errorf("event %s:%d does not follow %d", e.Shard, e.Seq, prev)
		}
		last[e.Shard] = e.Seq
		byOrg[e.OrgID] = append(byOrg[e.OrgID], e)
	}
	return byOrg, nil
}

// newEvents drops the events of org already applied: those of the shard of the organization's
// last applied event (its last_shard and last_seq, locked) numbered at or below it. The stream
// cursor already prevents redelivery; this is the per-organization guard, per shard because
// sequences are. An event from another shard is the organization's after a move (the ledger
// freezes the organization while it moves, writes nothing on the source after the move-out and
// nothing on the target before the move-in) and is taken in stream order; the alert rule is
// state-based (each event's balance is absolute, the alert state and generation are stored),
// so exactly one email per crossing does not depend on comparing sequences of two shards.
func newEvents(ctx context.Context, tx pgx.Tx, org string, events []notify.LedgerEvent) ([]notify.LedgerEvent, error) {
	var shard string
	var seq int64
	err := tx.QueryRow(ctx, `SELECT last_shard, last_seq FROM org_balances WHERE org_id = $1 FOR UPDATE`, org).Scan(&shard, &seq)
	if errors.Is(err, pgx.ErrNoRows) {
		return events, nil
	}
	if err != nil {
		return nil, fmt.Errorf("locking balance of %s: %w", org, err)
	}
	fresh := events[:0:0]
	for _, e := range events {
		if e.Shard == shard && e.Seq <= seq && seq > 0 {
			continue
		}
		fresh = append(fresh, e)
	}
	return fresh, nil
}

// updateOrg stores one organization's latest balance, applies change to its members and
// returns the emails to queue.
func updateOrg(ctx context.Context, tx pgx.Tx, org string, events []notify.LedgerEvent, change MembersChange) ([]notify.Email, error) {
	events, err := newEvents(ctx, tx, org, events)
	if err != nil || len(events) == 0 {
		return nil, err
	}
	e := events[len(events)-1]
	if _, err := tx.Exec(ctx, `INSERT INTO org_balances (org_id, currency, balance, available, expires_at, last_seq, last_shard)
VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (org_id) DO UPDATE SET currency = EXCLUDED.currency, balance = EXCLUDED.balance,
available = EXCLUDED.available, expires_at = EXCLUDED.expires_at, last_seq = EXCLUDED.last_seq, last_shard = EXCLUDED.last_shard,
updated_at = now()`,
		org, e.Currency, int64(e.Balance), int64(e.Available), nullTime(e.ExpiresAt), e.Seq, e.Shard); err != nil {
		return nil, fmt.Errorf("storing balance of %s: %w", org, err)
	}
	rows, err := tx.Query(ctx, `SELECT `+settingsColumns+` FROM member_settings WHERE org_id = $1 ORDER BY member_id FOR UPDATE`, org)
	if err != nil {
		return nil, fmt.Errorf("locking members of %s: %w", org, err)
	}
	members, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (notify.Settings, error) { return scanSettings(r) })
	if err != nil {
		return nil, fmt.Errorf("reading members of %s: %w", org, err)
	}
	if len(members) == 0 {
		return nil, nil
	}
	before := make(map[string]notify.Settings, len(members))
	for _, m := range members {
		before[m.MemberID] = m
	}
	changed, emails := change(members, events)
	for _, m := range changed {
		b, ok := before[m.MemberID]
		if !ok || m.OrgID != org {
			return nil, fmt.Errorf("updating alert of %s/%s: not a locked member", org, m.MemberID)
		}
		tag, err := tx.Exec(ctx, `UPDATE member_settings SET alert_state = $3, alert_generation = $4
WHERE org_id = $1 AND member_id = $2 AND alert_state = $5 AND alert_generation = $6`,
			org, m.MemberID, string(m.AlertState), m.AlertGeneration, string(b.AlertState), b.AlertGeneration)
		if err != nil {
			return nil, fmt.Errorf("updating alert of %s/%s: %w", org, m.MemberID, err)
		}
		if tag.RowsAffected() != 1 {
			return nil, errors.New("updating alert: state changed under a row lock")
		}
	}
	return emails, nil
}

// QueueExpiryReminders queues the "credits expire soon" emails remind returns for organizations
// whose positive balance expires within window after now and whose current expiry date has no
// reminder yet, given their opted-in members: one reminder per expiry date (a top-up moves the
// date and so allows a new one). Replicas
// share the work with SKIP LOCKED. It returns how many organizations it handled (at most limit)
// and how many emails it queued.
func (s *Store) QueueExpiryReminders(ctx context.Context, now time.Time, window time.Duration, limit int, remind func(notify.Balance, []notify.Settings) []notify.Email) (orgs, queued int, err error) {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return 0, 0, fmt.Errorf("beginning transaction: %w", err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	rows, err := tx.Query(ctx, `SELECT `+balanceColumns+` FROM org_balances
WHERE expires_at > $1 AND expires_at <= $2 AND balance > 0 AND reminded_expires_at IS DISTINCT FROM expires_at
ORDER BY expires_at LIMIT $3 FOR UPDATE SKIP LOCKED`, now, now.Add(window), limit)
	if err != nil {
		return 0, 0, fmt.Errorf("listing expiring balances: %w", err)
	}
	due, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (notify.Balance, error) {
		b, err := scanBalance(r)
		if err != nil {
			return notify.Balance{}, err
		}
		return *b, nil
	})
	if err != nil {
		return 0, 0, fmt.Errorf("reading expiring balances: %w", err)
	}
	var emails []notify.Email
	for _, b := range due {
		rows, err := tx.Query(ctx, `SELECT `+settingsColumns+` FROM member_settings WHERE org_id = $1 AND credits_expiring_enabled ORDER BY member_id`, b.OrgID)
		if err != nil {
			return 0, 0, fmt.Errorf("listing members of %s: %w", b.OrgID, err)
		}
		members, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (notify.Settings, error) { return scanSettings(r) })
		if err != nil {
			return 0, 0, fmt.Errorf("reading members of %s: %w", b.OrgID, err)
		}
		emails = append(emails, remind(b, members)...)
		if _, err := tx.Exec(ctx, `UPDATE org_balances SET reminded_expires_at = expires_at WHERE org_id = $1`, b.OrgID); err != nil {
			return 0, 0, fmt.Errorf("recording reminder of %s: %w", b.OrgID, err)
		}
	}
	n, err := insertEmails(ctx, tx, emails)
	if err != nil {
		return 0, 0, err
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, 0, fmt.Errorf("committing reminders: %w", err)
	}
	return len(due), n, nil
}

// QueueRentalSuspended queues the emails notice returns for the organization's members opted in
// to rental notices, given its latest known balance (nil when unknown), and returns how many
// were new (0 when their idempotency keys were seen before).
func (s *Store) QueueRentalSuspended(ctx context.Context, orgID string, notice func(members []notify.Settings, bal *notify.Balance) []notify.Email) (int, error) {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return 0, fmt.Errorf("beginning transaction: %w", err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	rows, err := tx.Query(ctx, `SELECT `+settingsColumns+` FROM member_settings WHERE org_id = $1 AND rental_suspended_enabled ORDER BY member_id`, orgID)
	if err != nil {
		return 0, fmt.Errorf("listing members: %w", err)
	}
	members, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (notify.Settings, error) { return scanSettings(r) })
	if err != nil {
		return 0, fmt.Errorf("reading members: %w", err)
	}
	bal, err := scanBalance(tx.QueryRow(ctx, `SELECT `+balanceColumns+` FROM org_balances WHERE org_id = $1`, orgID))
	if err != nil {
		return 0, fmt.Errorf("reading balance: %w", err)
	}
	n, err := insertEmails(ctx, tx, notice(members, bal))
	if err != nil {
		return 0, err
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, fmt.Errorf("committing rental notice: %w", err)
	}
	return n, nil
}

// QueueEmails queues emails in one transaction (each once per idempotency key) and returns how
// many were new.
func (s *Store) QueueEmails(ctx context.Context, emails []notify.Email) (int, error) {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return 0, fmt.Errorf("beginning transaction: %w", err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	n, err := insertEmails(ctx, tx, emails)
	if err != nil {
		return 0, err
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, fmt.Errorf("committing emails: %w", err)
	}
	return n, nil
}
