package grpcapi

import (
	"fmt"

	ledgerv1 "github.com/tallyhq/tally/pkg/gen/tally/ledger/v1"
	"github.com/tallyhq/tally/pkg/grpcmap"
	"github.com/tallyhq/tally/pkg/money"
	"github.com/tallyhq/tally/services/ledger/internal/ledger"
)

var txKinds = map[ledger.TxKind]ledgerv1.TransactionKind{
	ledger.TxCredit:     ledgerv1.TransactionKind_TRANSACTION_KIND_CREDIT,
	ledger.TxDebit:      ledgerv1.TransactionKind_TRANSACTION_KIND_DEBIT,
	ledger.TxAdjustment: ledgerv1.TransactionKind_TRANSACTION_KIND_ADJUSTMENT,
	ledger.TxExpiry:     ledgerv1.TransactionKind_TRANSACTION_KIND_EXPIRY,
	ledger.TxCapture:    ledgerv1.TransactionKind_TRANSACTION_KIND_CAPTURE,
}

var txKindsFromProto = func() map[ledgerv1.TransactionKind]ledger.TxKind {
	m := make(map[ledgerv1.TransactionKind]ledger.TxKind, len(txKinds))
	for k, v := range txKinds {
		m[v] = k
	}
	return m
}()

var eventKinds = map[ledger.EventKind]ledgerv1.EventKind{
	ledger.EventCredit:       ledgerv1.EventKind_EVENT_KIND_CREDIT,
	ledger.EventDebit:        ledgerv1.EventKind_EVENT_KIND_DEBIT,
	ledger.EventAdjustment:   ledgerv1.EventKind_EVENT_KIND_ADJUSTMENT,
	ledger.EventExpiry:       ledgerv1.EventKind_EVENT_KIND_EXPIRY,
	ledger.EventCapture:      ledgerv1.EventKind_EVENT_KIND_CAPTURE,
	ledger.EventHoldPlaced:   ledgerv1.EventKind_EVENT_KIND_HOLD_PLACED,
	ledger.EventHoldReleased: ledgerv1.EventKind_EVENT_KIND_HOLD_RELEASED,
	ledger.EventHoldExpired:  ledgerv1.EventKind_EVENT_KIND_HOLD_EXPIRED,
	ledger.EventSpendAlert:   ledgerv1.EventKind_EVENT_KIND_SPEND_ALERT,
}

var holdStatuses = map[ledger.HoldStatus]ledgerv1.HoldStatus{
	ledger.HoldActive:   ledgerv1.HoldStatus_HOLD_STATUS_ACTIVE,
	ledger.HoldCaptured: ledgerv1.HoldStatus_HOLD_STATUS_CAPTURED,
	ledger.HoldReleased: ledgerv1.HoldStatus_HOLD_STATUS_RELEASED,
	ledger.HoldExpired:  ledgerv1.HoldStatus_HOLD_STATUS_EXPIRED,
}

func txToProto(t *ledger.Transaction) *ledgerv1.Transaction {
	if t == nil {
		return nil
	}
	p := &ledgerv1.Transaction{
		Id:             t.ID,
		OrgId:          t.OrgID,
		Kind:           txKinds[t.Kind],
		Amount:         money.ToProto(t.Amount, t.Currency),
		BalanceAfter:   money.ToProto(t.BalanceAfter, t.Currency),
		Description:    t.Description,
		Metadata:       t.Metadata,
		Reason:         t.Reason,
		Reference:      t.Reference,
		IdempotencyKey: t.IdempotencyKey,
		Actor:          t.Actor,
		HoldId:         t.HoldID,
		CreatedAt:      grpcmap.Timestamp(t.CreatedAt),
	}
	for _, post := range t.Postings {
		p.Postings = append(p.Postings, &ledgerv1.Posting{Account: post.Account, Amount: money.ToProto(post.Amount, t.Currency)})
	}
	if u := t.Pricing; u != nil {
		p.PricedUsage = &ledgerv1.PricedUsage{ModelId: u.ModelID, PriceVersionId: u.PriceVersionID, CatalogVersion: u.CatalogVersion, OccurredAt: grpcmap.Timestamp(u.OccurredAt)}
		for _, l := range u.Lines {
			p.PricedUsage.Lines = append(p.PricedUsage.Lines, &ledgerv1.UsageLine{
				Unit: l.Unit, Quantity: l.Quantity, UnitPrice: money.ToProto(l.UnitPrice, t.Currency), Per: l.Per, Amount: money.ToProto(l.Amount, t.Currency),
			})
		}
	}
	return p
}

func holdToProto(h *ledger.Hold) *ledgerv1.Hold {
	if h == nil {
		return nil
	}
	p := &ledgerv1.Hold{
		Id:            h.ID,
		OrgId:         h.OrgID,
		Amount:        money.ToProto(h.Amount, h.Currency),
		Status:        holdStatuses[h.Status],
		ExpiresAt:     grpcmap.Timestamp(h.ExpiresAt),
		CreatedAt:     grpcmap.Timestamp(h.CreatedAt),
		TransactionId: h.TransactionID,
	}
	if h.Status == ledger.HoldCaptured {
		p.Captured = money.ToProto(h.Captured, h.Currency)
	}
	return p
}

func eventToProto(e ledger.Event) *ledgerv1.BalanceEvent {
	p := &ledgerv1.BalanceEvent{
		Sequence:      e.Seq,
		OrgId:         e.OrgID,
		Kind:          eventKinds[e.Kind],
		TransactionId: e.TransactionID,
		HoldId:        e.HoldID,
		Amount:        money.ToProto(e.Amount, e.Currency),
		Balance:       money.ToProto(e.Balance, e.Currency),
		Available:     money.ToProto(e.Available, e.Currency),
		ExpiresAt:     grpcmap.Timestamp(e.ExpiresAt),
		OccurredAt:    grpcmap.Timestamp(e.OccurredAt),
		CreditSource:  creditSources[e.CreditSource],
	}
	if e.Kind == ledger.EventSpendAlert {
		p.SpendLimit = money.ToProto(e.SpendLimit, e.Currency)
	}
	return p
}

var creditSources = map[ledger.CreditSource]ledgerv1.CreditSource{
	ledger.SourcePayment: ledgerv1.CreditSource_CREDIT_SOURCE_PAYMENT,
	ledger.SourceGrant:   ledgerv1.CreditSource_CREDIT_SOURCE_GRANT,
}

const dayLayout = "2006-01-02"

func usageSummaryToProto(s ledger.UsageSummary) (*ledgerv1.GetUsageSummaryResponse, error) {
	resp := &ledgerv1.GetUsageSummaryResponse{
		OrgId: s.OrgID, CurrencyCode: s.Currency,
		From: s.Window.From.Format(dayLayout), To: s.Window.To.Format(dayLayout),
		Days: make([]*ledgerv1.UsageDay, 0, len(s.Days)),
	}
	for _, d := range s.Days {
		total, err := money.BigToProto(d.Total, s.Currency)
		if err != nil {
			return nil, fmt.Errorf("usage of %s on %s: %w", s.OrgID, d.Day.Format(dayLayout), err)
		}
		items, err := usageItemsToProto(d.Items, s.Currency)
		if err != nil {
			return nil, err
		}
		resp.Days = append(resp.Days, &ledgerv1.UsageDay{Day: d.Day.Format(dayLayout), Total: total, Items: items})
	}
	totals, err := usageItemsToProto(s.Totals, s.Currency)
	if err != nil {
		return nil, err
	}
	resp.Totals = totals
	if resp.Projects, err = usageItemsToProto(s.Projects, s.Currency); err != nil {
		return nil, err
	}
	return resp, nil
}

func usageItemsToProto(items []ledger.UsageAmount, currency string) ([]*ledgerv1.UsageItem, error) {
	out := make([]*ledgerv1.UsageItem, 0, len(items))
	for _, it := range items {
		amt, err := money.BigToProto(it.Amount, currency)
		if err != nil {
			return nil, fmt.Errorf("usage of %s %s: %w", it.Item.Kind, it.Item.ID, err)
		}
		out = append(out, &ledgerv1.UsageItem{Kind: string(it.Item.Kind), Id: it.Item.ID, Amount: amt, Count: it.Count})
	}
	return out, nil
}
