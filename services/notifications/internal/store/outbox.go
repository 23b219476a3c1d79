package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
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

// EmailClaim is how a sender claims an email: its name (shown while it holds the email) and the
// lease after which another sender may take the email over.
type EmailClaim struct {
	Owner string
	Lease time.Duration
}

// Claimed is an email claimed for one delivery attempt: Attempts counts the attempts made before
// this one; Token fences the attempt's record against later claims.
type Claimed struct {
	notify.Delivery
	Token string
}

// ClaimEmail claims the oldest pending email due at now, committing the claim before returning
// (claim → commit → call → record: no transaction stays open during the SMTP exchange). The
// claiming statement takes the row FOR UPDATE SKIP LOCKED, so concurrent senders take different
// emails; it pushes the email's next attempt to the end of the lease and sets a fresh token.
// ok is false when nothing was due.
func (s *Store) ClaimEmail(ctx context.Context, now time.Time, c EmailClaim) (claimed Claimed, ok bool, err error) {
	token := uuid.NewString()
	d, err := scanDelivery(s.pool.QueryRow(ctx, `UPDATE emails SET claim_token = $3::text::uuid, claimed_by = $4, next_attempt_at = $2,
attempts = attempts + 1
WHERE id = (SELECT id FROM emails WHERE status = 'pending' AND next_attempt_at <= $1 ORDER BY next_attempt_at, id LIMIT 1 FOR UPDATE SKIP LOCKED)
RETURNING `+emailColumns, now, now.Add(c.Lease), token, c.Owner))
	if errors.Is(err, pgx.ErrNoRows) {
		return Claimed{}, false, nil
	}
	if err != nil {
		return Claimed{}, false, fmt.Errorf("claiming email: %w", err)
	}
	d.Attempts-- // the attempts made before this one
	return Claimed{Delivery: d, Token: token}, true, nil
}

// RecordAttempt records the outcome of the attempt of claimed, in its own short statement.
//
// A sender that dies after the SMTP server accepted the email but before the record leaves it
// pending: once the lease ends it is sent again with the same Message-ID (at-least-once
// delivery). A sent email is recorded as sent whoever claims it now; a failure is recorded only
// while the claim is still the one that failed, so a sender whose lease ran out cannot mark an
// email failed or push back its retry under a newer claim.
func (s *Store) RecordAttempt(ctx context.Context, claimed Claimed, a notify.Attempt) error {
	var err error
	switch {
	case a.Err == nil:
		_, err = s.pool.Exec(ctx, `UPDATE emails SET status = 'sent', message_id = $2, last_error = '', sent_at = now(),
claim_token = NULL, claimed_by = NULL WHERE id = $1 AND status = 'pending'`, claimed.ID, a.MessageID)
	case a.GiveUp:
		_, err = s.pool.Exec(ctx, `UPDATE emails SET status = 'failed', message_id = $2, last_error = $3, claim_token = NULL, claimed_by = NULL
WHERE id = $1 AND status = 'pending' AND claim_token = $4::text::uuid`, claimed.ID, a.MessageID, truncate(a.Err.Error(), 1000), claimed.Token)
	default:
		_, err = s.pool.Exec(ctx, `UPDATE emails SET message_id = $2, last_error = $3, next_attempt_at = $4, claim_token = NULL, claimed_by = NULL
WHERE id = $1 AND status = 'pending' AND claim_token = $5::text::uuid`, claimed.ID, a.MessageID, truncate(a.Err.Error(), 1000), a.RetryAt, claimed.Token)
	}
	if err != nil {
		return fmt.Errorf("recording delivery of %s: %w", claimed.ID, err)
	}
	return nil
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
