package notify

import (
	"time"

	"github.com/tallyhq/tally/pkg/money"
)

// Member identifies a member as their token does.
type Member struct {
	OrgID        string
	MemberID     string
	IsAdmin      bool
	AccountEmail string
	// Name is the token's display name, recorded in the organization's member directory.
	Name string
}

// ApplyEvents is the low-credit rule over one organization's ledger events, in sequence order:
// it moves the alert of each member in members through every event (an alert fires once per
// fall below the threshold, in the threshold's currency, and re-arms when the balance is back
// at or above it) and returns the members whose alert changed, and the emails to queue: one
// alert per crossing, plus the payment and expiry emails the members opted in to. members is
// not modified.
func ApplyEvents(members []Settings, events []LedgerEvent) (changed []Settings, emails []Email) {
	after := make([]Settings, len(members))
	copy(after, members)
	for _, ev := range events {
		for i := range after {
			m := &after[i]
			to := m.Email()
			if m.LowCreditEnabled && m.Threshold.Currency == ev.Currency {
				next, fire := Evaluate(m.AlertState, ev.Balance, m.Threshold.Nanos)
				m.AlertState = next
				if fire {
					m.AlertGeneration++
					if to != "" {
						emails = append(emails, lowCreditEmail(*m, to, EmailData{
							OrgID: ev.OrgID, Currency: ev.Currency, Balance: ev.Balance, Threshold: m.Threshold.Nanos, OccurredAt: ev.OccurredAt,
						}, ev.Seq))
					}
				}
			}
			kind := eventEmail(ev.Kind)
			if kind == "" || !m.Wants(kind) || to == "" {
				continue
			}
			emails = append(emails, Email{
				IdempotencyKey: EventKey(kind, ev.OrgID, m.MemberID, ev.Shard, ev.Seq),
				Kind:           kind,
				OrgID:          ev.OrgID,
				MemberID:       m.MemberID,
				To:             to,
				Data: EmailData{
					OrgID: ev.OrgID, Currency: ev.Currency, Balance: ev.Balance, Amount: ev.Amount, ExpiresAt: ev.ExpiresAt,
					OccurredAt: ev.OccurredAt, TransactionID: ev.TransactionID,
					Threshold: ev.SpendLimit, // a spend alert's limit
				},
				LedgerSeq: ev.Seq,
			})
		}
	}
	for i, m := range after {
		if m.AlertState != members[i].AlertState || m.AlertGeneration != members[i].AlertGeneration {
			changed = append(changed, m)
		}
	}
	return changed, emails
}

// ChangeSettings is the low-credit rule over a settings change: it returns before with prefs
// applied and its alert reconsidered against the organization's latest known balance (nil when
// unknown; see Reconsider), and the alert to queue when enabling the alert or changing its
// threshold while below it fires: at most one. now is when the change happens.
func ChangeSettings(before Settings, prefs Preferences, bal *Balance, now time.Time) (after Settings, emails []Email) {
	after = before
	after.Preferences = prefs
	state, fire := Reconsider(before, after, bal)
	after.AlertState = state
	if !fire {
		return after, nil
	}
	after.AlertGeneration++
	if to := after.Email(); to != "" {
		emails = append(emails, lowCreditEmail(after, to, EmailData{
			OrgID: after.OrgID, Currency: bal.Currency, Balance: bal.Balance, Threshold: after.Threshold.Nanos, OccurredAt: now.UTC(),
		}, 0))
	}
	return after, emails
}

// ExpiryReminders returns the "credits expire soon" emails of an organization whose balance
// bal expires soon, one per member in members that opted in and has an address.
func ExpiryReminders(bal Balance, members []Settings) []Email {
	var emails []Email
	for _, m := range members {
		if !m.CreditsExpiringEnabled || m.Email() == "" {
			continue
		}
		emails = append(emails, Email{
			IdempotencyKey: ExpiringKey(bal.OrgID, m.MemberID, bal.ExpiresAt),
			Kind:           KindCreditsExpiring,
			OrgID:          bal.OrgID,
			MemberID:       m.MemberID,
			To:             m.Email(),
			Data:           EmailData{OrgID: bal.OrgID, Currency: bal.Currency, Balance: bal.Balance, ExpiresAt: bal.ExpiresAt},
			LedgerSeq:      bal.Seq,
		})
	}
	return emails
}

// RentalSuspended is a rental suspension reported by the instances-metering service.
type RentalSuspended struct {
	OrgID, InstanceID string
	// Key is the caller's idempotency key.
	Key, Reason string
}

// RentalSuspendedEmails returns the rental-suspended emails of the members that opted in, with
// the organization's balance when known (nil otherwise); now is when it was reported.
func RentalSuspendedEmails(r RentalSuspended, members []Settings, bal *Balance, now time.Time) []Email {
	data := EmailData{OrgID: r.OrgID, InstanceID: r.InstanceID, Reason: r.Reason, OccurredAt: now.UTC()}
	if bal != nil {
		data.Currency, data.Balance = bal.Currency, bal.Balance
	}
	var emails []Email
	for _, m := range members {
		if !m.RentalSuspendedEnabled || m.Email() == "" {
			continue
		}
		emails = append(emails, Email{
			IdempotencyKey: RentalSuspendedKey(r.OrgID, m.MemberID, r.Key),
			Kind:           KindRentalSuspended,
			OrgID:          r.OrgID,
			MemberID:       m.MemberID,
			To:             m.Email(),
			Data:           data,
		})
	}
	return emails
}

func lowCreditEmail(st Settings, to string, data EmailData, seq int64) Email {
	return Email{
		IdempotencyKey: LowCreditKey(st.OrgID, st.MemberID, st.AlertGeneration),
		Kind:           KindLowCredit,
		OrgID:          st.OrgID,
		MemberID:       st.MemberID,
		To:             to,
		Data:           data,
		LedgerSeq:      seq,
	}
}

// eventEmail returns the opt-in email a ledger event kind causes, or "".
func eventEmail(k EventKind) EmailKind {
	switch k {
	case EventCredit:
		return KindPaymentSucceeded
	case EventExpiry:
		return KindCreditsExpired
	case EventSpendAlert:
		return KindSpendAlert
	}
	return ""
}

// RechargeFailed is a failed automatic recharge reported by the payments service.
type RechargeFailed struct {
	OrgID string
	// Key is the caller's idempotency key; AuthRequired tells a card that needs authentication
	// from a declined one.
	Key          string
	AuthRequired bool
	Amount       money.Money
	Failures     int
	RuleDisabled bool
	Message      string
	Recipients   []string
}

// RechargeFailedEmails returns the emails of a failed recharge: one to every admin the directory
// knows (known, as DirectoryMembers returns it) and one to each recipient payments names (the
// members who saved the rule and the card) who is not in the directory; a recipient the
// directory knows as a member who is no admin (e.g. a demoted admin) gets none. Each address is
// emailed once. An admin's email is keyed by their member id and an outside recipient's by the
// address, so a retried report queues nothing new. now is when it was reported.
func RechargeFailedEmails(r RechargeFailed, known []KnownMember, now time.Time) []Email {
	kind := KindRechargeDeclined
	if r.AuthRequired {
		kind = KindRechargeAuthRequired
	}
	data := EmailData{OrgID: r.OrgID, Currency: r.Amount.Currency, Amount: r.Amount.Nanos, Reason: r.Message, OccurredAt: now.UTC(),
		Failures: r.Failures, RuleDisabled: r.RuleDisabled}
	byAccount := make(map[string]bool, len(known)) // account email → known
	for _, m := range known {
		byAccount[foldAddress(m.AccountEmail)] = true
	}
	seen := map[string]bool{}
	var emails []Email
	add := func(to, memberID, idempotencyKey string) {
		if to == "" || seen[foldAddress(to)] {
			return
		}
		seen[foldAddress(to)] = true
		emails = append(emails, Email{IdempotencyKey: idempotencyKey, Kind: kind, OrgID: r.OrgID, MemberID: memberID, To: to, Data: data})
	}
	for _, m := range known {
		if m.IsAdmin {
			add(m.Email(), m.MemberID, RechargeFailedMemberKey(r.OrgID, m.MemberID, r.Key))
		}
	}
	for _, to := range r.Recipients {
		if !byAccount[foldAddress(to)] {
			add(to, "", RechargeFailedKey(r.OrgID, to, r.Key))
		}
	}
	return emails
}
