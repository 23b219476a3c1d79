package grpcapi

import (
	"context"

	ledgerv1 "github.com/tallyhq/tally/pkg/gen/tally/ledger/v1"
	"github.com/tallyhq/tally/pkg/money"
	"github.com/tallyhq/tally/services/ledger/internal/app"
)

// ListProjectLimits implements LedgerServiceServer.
func (s *Server) ListProjectLimits(ctx context.Context, req *ledgerv1.ListProjectLimitsRequest) (*ledgerv1.ListProjectLimitsResponse, error) {
	month, ps, err := s.app.ProjectLimits(ctx, req.GetOrgId())
	if err != nil {
		return nil, err
	}
	resp := &ledgerv1.ListProjectLimitsResponse{Month: month.Format("2006-01")}
	for _, p := range ps {
		resp.ProjectLimits = append(resp.ProjectLimits, projectLimitToProto(p))
	}
	return resp, nil
}

// SetProjectLimit implements LedgerServiceServer.
func (s *Server) SetProjectLimit(ctx context.Context, req *ledgerv1.SetProjectLimitRequest) (*ledgerv1.SetProjectLimitResponse, error) {
	limit, err := limitOf(req.GetLimit())
	if err != nil {
		return nil, err
	}
	st, err := s.app.SetProjectLimit(ctx, req.GetOrgId(), req.GetProject(), limit.Nanos, limit.Currency)
	if err != nil {
		return nil, err
	}
	s.logger.InfoContext(ctx, "project limit set", "org_id", req.GetOrgId(), "project", req.GetProject(), "limit", st.Limit.String(), "actor", actor(ctx))
	return &ledgerv1.SetProjectLimitResponse{ProjectLimit: projectLimitToProto(st)}, nil
}

func projectLimitToProto(p app.ProjectLimitState) *ledgerv1.ProjectLimitStatus {
	remaining := max(p.Limit-p.Spent, 0)
	return &ledgerv1.ProjectLimitStatus{
		Project:    p.Project,
		Limit:      money.ToProto(p.Limit, p.Currency),
		MonthSpend: money.ToProto(p.Spent, p.Currency),
		Remaining:  money.ToProto(remaining, p.Currency),
		Reached:    p.Limit > 0 && p.Spent >= p.Limit,
	}
}
