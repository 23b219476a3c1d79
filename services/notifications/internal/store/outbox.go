package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tallyhq/tally/services/notifications/internal/notify"
)

const emailColumns = `id::text, idempotency_key, kind, org_id, member_id, to_address, data, ledger_seq, status, attempts,
last_error, message_id, created_at, next_attempt_at, sent_at`

func scanDelivery(row pgx.Row) (notify.Delivery, error) {
	var d notify.Delivery
	var kind, status string
	var data []byte
	var sent *time.Time
	err := row.Scan(&d.ID, &d.IdempotencyKey, &kind, &d.OrgID, &d.MemberID, &d.To, &data, &d.LedgerSeq, &status, &d.Attempts,
		&d.LastError, &d.MessageID, &d.CreatedAt, &d.NextAttemptAt, &sent)
	if err != nil {
		return d, err
	}
	d.Kind, d.Status = notify.EmailKind(kind), notify.DeliveryStatus(status)
	if sent != nil {
		d.SentAt = *sent
	}
	if err := json.Unmarshal(data, &d.Data); err != nil {
		return d, fmt.Errorf("decoding data of email %s: %w", d.ID, err)
	}
	return d, nil
}

// DeliverNext claims the oldest due pending email with FOR UPDATE SKIP LOCKED, calls deliver
// with it while the row stays locked (so no other replica sends it meanwhile), and records the
// attempt in the same transaction. It reports false when nothing was due.
//
// A crash after the SMTP server accepted the email but before the commit leaves the email
// pending: it is sent again with the same Message-ID (at-least-once delivery).
func (s *Store) DeliverNext(ctx context.Context, now time.Time, deliver func(context.Context, notify.Delivery) notify.Attempt) (bool, error) {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return false, fmt.Errorf("beginning transaction: %w", err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	d, err := scanDelivery(tx.QueryRow(ctx, `SELECT `+emailColumns+` FROM emails
WHERE status = 'pending' AND next_attempt_at <= $1 ORDER BY next_attempt_at, id LIMIT 1 FOR UPDATE SKIP LOCKED`, now))
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("claiming email: %w", err)
	}
	a := deliver(ctx, d)
	// The attempt is recorded even when ctx ends meanwhile: the server may have the email.
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	switch {
	case a.Err == nil:
		_, err = tx.Exec(wctx, `UPDATE emails SET status = 'sent', attempts = attempts + 1, message_id = $2, last_error = '', sent_at = now()
WHERE id = $1`, d.ID, a.MessageID)
	case a.GiveUp:
		_, err = tx.Exec(wctx, `UPDATE emails SET status = 'failed', attempts = attempts + 1, message_id = $2, last_error = $3 WHERE id = $1`,
			d.ID, a.MessageID, truncate(a.Err.Error(), 1000))
	default:
		_, err = tx.Exec(wctx, `UPDATE emails SET attempts = attempts + 1, message_id = $2, last_error = $3, next_attempt_at = $4 WHERE id = $1`,
			d.ID, a.MessageID, truncate(a.Err.Error(), 1000), a.RetryAt)
	}
	if err != nil {
		return true, fmt.Errorf("recording delivery of %s: %w", d.ID, err)
	}
	if err := tx.Commit(wctx); err != nil {
		return true, fmt.Errorf("committing delivery of %s: %w", d.ID, err)
	}
	return true, nil
}

// ListDeliveries lists emails newest first.
func (s *Store) ListDeliveries(ctx context.Context, f notify.DeliveryFilter) ([]notify.Delivery, error) {
	var afterAt *time.Time
	afterID := ""
	if f.After != nil {
		afterAt, afterID = &f.After.CreatedAt, f.After.ID
	}
	rows, err := s.pool.Query(ctx, `SELECT `+emailColumns+` FROM emails
WHERE ($1 = '' OR org_id = $1) AND ($2 = '' OR member_id = $2) AND ($3 = '' OR status = $3)
AND ($4::timestamptz IS NULL OR (created_at, id) < ($4, $5::uuid))
ORDER BY created_at DESC, id DESC LIMIT $6`, f.OrgID, f.MemberID, string(f.Status), afterAt, nullUUID(afterID), f.Limit)
	if err != nil {
		return nil, fmt.Errorf("listing deliveries: %w", err)
	}
	ds, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (notify.Delivery, error) { return scanDelivery(r) })
	if err != nil {
		return nil, fmt.Errorf("reading deliveries: %w", err)
	}
	return ds, nil
}

func nullUUID(id string) *string {
	if id == "" {
		return nil
	}
	return &id
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "")
}
