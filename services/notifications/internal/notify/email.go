package notify

import (
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/tallyhq/tally/pkg/money"
)

// DeliveryStatus is the state of a queued email.
type DeliveryStatus string

// Delivery statuses.
const (
	StatusPending DeliveryStatus = "pending"
	StatusSent    DeliveryStatus = "sent"
	StatusFailed  DeliveryStatus = "failed"
)

// EmailData is what an email's templates show. It is stored with the email when it is queued,
// so a retry renders the same message.
type EmailData struct {
	OrgID      string      `json:"org_id"`
	OrgName    string      `json:"org_name,omitempty"`
	Currency   string      `json:"currency,omitempty"`
	Balance    money.Nanos `json:"balance"`
	Threshold  money.Nanos `json:"threshold,omitempty"`
	Amount     money.Nanos `json:"amount,omitempty"`
	ExpiresAt  time.Time   `json:"expires_at,omitzero"`
	OccurredAt time.Time   `json:"occurred_at,omitzero"`
	InstanceID string      `json:"instance_id,omitempty"`
	Reason     string      `json:"reason,omitempty"`
	// TransactionID is the ledger transaction behind a payment or expiry.
	TransactionID string `json:"transaction_id,omitempty"`
	// Failures counts a failed recharge's failures in a row; RuleDisabled is set when it
	// disabled the auto-recharge rule.
	Failures     int  `json:"failures,omitempty"`
	RuleDisabled bool `json:"rule_disabled,omitempty"`
}

// Email is one queued notification email.
type Email struct {
	ID             string // UUID, assigned when queued
	IdempotencyKey string
	Kind           EmailKind
	OrgID          string
	MemberID       string
	To             string
	Data           EmailData
	// LedgerSeq is the ledger event that caused the email; 0 when none did.
	LedgerSeq int64
}

// Delivery is a queued email with its delivery state, as listed in the delivery log.
type Delivery struct {
	Email
	Status        DeliveryStatus
	Attempts      int
	LastError     string
	MessageID     string
	CreatedAt     time.Time
	NextAttemptAt time.Time
	SentAt        time.Time // zero until sent
}

// DeliveryFilter selects deliveries; zero fields match everything.
type DeliveryFilter struct {
	OrgID    string
	MemberID string
	Status   DeliveryStatus
	// After is the page cursor: deliveries strictly older than it.
	After *DeliveryCursor
	Limit int
}

// DeliveryCursor is a position in the newest-first delivery log.
type DeliveryCursor struct {
	CreatedAt time.Time
	ID        string
}

// Idempotency keys: one per alert crossing or notice and recipient, so a replayed event or a
// retried call never queues a second distinct email. Parts are path-escaped and joined by "/",
// so ids containing the separator cannot collide.

func key(parts ...string) string {
	for i, p := range parts {
		parts[i] = url.PathEscape(p)
	}
	return strings.Join(parts, "/")
}

// LowCreditKey is the key of a member's generation-th low-credit alert.
func LowCreditKey(orgID, memberID string, generation int64) string {
	return key(string(KindLowCredit), orgID, memberID, strconv.FormatInt(generation, 10))
}

// EventKey is the key of an email caused by the ledger event seq of shard: sequences are per
// shard, so the shard is part of the key.
func EventKey(kind EmailKind, orgID, memberID, shard string, seq int64) string {
	return key(string(kind), orgID, memberID, shard+":"+strconv.FormatInt(seq, 10))
}

// ExpiringKey is the key of the reminder of an expiry date.
func ExpiringKey(orgID, memberID string, expiresAt time.Time) string {
	return key(string(KindCreditsExpiring), orgID, memberID, expiresAt.UTC().Format(time.RFC3339Nano))
}

// RentalSuspendedKey is the key of a rental-suspended notice.
func RentalSuspendedKey(orgID, memberID, callerKey string) string {
	return key(string(KindRentalSuspended), orgID, memberID, callerKey)
}

// RechargeFailedKey is the key of a failed recharge's email to one recipient.
func RechargeFailedKey(orgID, to, callerKey string) string {
	return key("recharge_failed", orgID, to, callerKey)
}

// RechargeFailedMemberKey is the key of a failed recharge's email to one admin of the directory.
func RechargeFailedMemberKey(orgID, memberID, callerKey string) string {
	return key("recharge_failed_member", orgID, memberID, callerKey)
}

// MessageID derives the Message-ID header (without angle brackets) from an email id: retries
// of one email carry the same Message-ID, so receivers can drop duplicates.
func MessageID(emailID, domain string) string {
	return emailID + "@" + domain
}
