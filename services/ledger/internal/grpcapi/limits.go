package grpcapi

import (
	"context"
	"fmt"

	moneypb "google.golang.org/genproto/googleapis/type/money"

	ledgerv1 "github.com/tallyhq/tally/pkg/gen/tally/ledger/v1"
	"github.com/tallyhq/tally/pkg/money"
	"github.com/tallyhq/tally/services/ledger/internal/app"
	"github.com/tallyhq/tally/services/ledger/internal/ledger"
)

// GetSpendLimit implements LedgerServiceServer.
func (s *Server) GetSpendLimit(ctx context.Context, req *ledgerv1.GetSpendLimitRequest) (*ledgerv1.GetSpendLimitResponse, error) {
	st, err := s.app.SpendLimit(ctx, req.GetOrgId())
	if err != nil {
		return nil, err
	}
	return &ledgerv1.GetSpendLimitResponse{SpendLimit: spendLimitToProto(req.GetOrgId(), st)}, nil
}

// SetSpendLimit implements LedgerServiceServer.
func (s *Server) SetSpendLimit(ctx context.Context, req *ledgerv1.SetSpendLimitRequest) (*ledgerv1.SetSpendLimitResponse, error) {
	limit, err := limitOf(req.GetLimit())
	if err != nil {
		return nil, err
	}
	st, err := s.app.SetSpendLimit(ctx, req.GetOrgId(), ledger.SpendLimit{Amount: limit.Nanos, AlertPercent: req.GetAlertPercent()}, limit.Currency)
	if err != nil {
		return nil, err
	}
	s.logger.InfoContext(ctx, "spend limit set", "org_id", req.GetOrgId(), "limit", st.Limit.Amount.String(),
		"alert_percent", st.Limit.AlertPercent, "actor", actor(ctx))
	return &ledgerv1.SetSpendLimitResponse{SpendLimit: spendLimitToProto(req.GetOrgId(), st)}, nil
}

func spendLimitToProto(orgID string, st app.SpendLimitState) *ledgerv1.SpendLimitStatus {
	remaining, limited := st.Limit.Amount-st.Spent, st.Limit.Amount > 0
	if !limited || remaining < 0 {
		remaining = 0
	}
	return &ledgerv1.SpendLimitStatus{
		OrgId:        orgID,
		Limit:        money.ToProto(st.Limit.Amount, st.Currency),
		AlertPercent: st.Limit.AlertPercent,
		Month:        st.Month.Format("2006-01"),
		MonthSpend:   money.ToProto(st.Spent, st.Currency),
		Remaining:    money.ToProto(remaining, st.Currency),
		Reached:      limited && st.Spent >= st.Limit.Amount,
		Alerted:      st.Alerted,
	}
}

// limitOf reads a spend limit's amount (absent: zero, which removes the limit); a negative one
// is refused.
func limitOf(m *moneypb.Money) (money.Money, error) {
	if m == nil {
		return money.Money{}, nil
	}
	limit, err := amount(m, false)
	if err != nil {
		return money.Money{}, err
	}
	if limit.Nanos < 0 {
		return money.Money{}, fmt.Errorf("%w: limit: must not be negative (zero removes the limit)", ledger.ErrInvalid)
	}
	return limit, nil
}
