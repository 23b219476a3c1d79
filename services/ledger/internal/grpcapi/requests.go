package grpcapi

import (
	"fmt"

	ledgerv1 "github.com/tallyhq/tally/pkg/gen/tally/ledger/v1"
	"github.com/tallyhq/tally/pkg/ids"
	"github.com/tallyhq/tally/services/ledger/internal/ledger"
)

// The write RPCs' requests as the ledger's Request, before Request.Validate: what can be refused
// from the request alone is refused here or there, with ledger.ErrInvalid (InvalidArgument).

func creditRequest(req *ledgerv1.CreditRequest, actor string) (*ledger.Request, error) {
	amt, err := amount(req.GetAmount(), true)
	if err != nil {
		return nil, err
	}
	var source ledger.CreditSource
	switch req.GetSource() {
	case ledgerv1.CreditSource_CREDIT_SOURCE_UNSPECIFIED, ledgerv1.CreditSource_CREDIT_SOURCE_PAYMENT:
		source = ledger.SourcePayment
	case ledgerv1.CreditSource_CREDIT_SOURCE_GRANT:
		source = ledger.SourceGrant
	default:
		return nil, fmt.Errorf("%w: source: unknown credit source %d", ledger.ErrInvalid, req.GetSource())
	}
	return &ledger.Request{
		Op: ledger.OpCredit, OrgID: req.GetOrgId(), Amount: amt.Nanos, Currency: amt.Currency,
		IdempotencyKey: req.GetIdempotencyKey(), Reason: req.GetReason(), Reference: req.GetReference(),
		Source: source, Actor: actor,
	}, nil
}

func debitRequest(req *ledgerv1.DebitRequest, actor string) (*ledger.Request, error) {
	r := &ledger.Request{
		Op: ledger.OpDebit, OrgID: req.GetOrgId(), IdempotencyKey: req.GetIdempotencyKey(),
		Description: req.GetDescription(), Metadata: req.GetMetadata(), RequireFunds: req.GetRequireFunds(), Actor: actor,
	}
	if req.GetUsage() != nil {
		if req.GetAmount() != nil {
			return nil, fmt.Errorf("%w: send either amount or usage, not both", ledger.ErrInvalid)
		}
		u, err := usageFromProto(req.GetUsage())
		if err != nil {
			return nil, err
		}
		r.Usage = u
		return r, nil
	}
	amt, err := amount(req.GetAmount(), true)
	if err != nil {
		return nil, err
	}
	r.Amount, r.Currency = amt.Nanos, amt.Currency
	return r, nil
}

func adjustRequest(req *ledgerv1.AdjustRequest, actor string) (*ledger.Request, error) {
	amt, err := amount(req.GetAmount(), false)
	if err != nil {
		return nil, err
	}
	return &ledger.Request{
		Op: ledger.OpAdjust, OrgID: req.GetOrgId(), Amount: amt.Nanos, Currency: amt.Currency,
		IdempotencyKey: req.GetIdempotencyKey(), Reason: req.GetReason(), Actor: actor,
	}, nil
}

func reserveRequest(req *ledgerv1.ReserveRequest, actor string) (*ledger.Request, error) {
	amt, err := amount(req.GetAmount(), true)
	if err != nil {
		return nil, err
	}
	ttl := ledger.DefaultHoldTTL
	if req.GetTtl() != nil {
		if err := req.GetTtl().CheckValid(); err != nil {
			return nil, fmt.Errorf("%w: ttl is not a valid duration", ledger.ErrInvalid)
		}
		ttl = req.GetTtl().AsDuration()
	}
	r := &ledger.Request{
		Op: ledger.OpReserve, OrgID: req.GetOrgId(), Amount: amt.Nanos, Currency: amt.Currency, TTL: ttl,
		IdempotencyKey: req.GetIdempotencyKey(), Description: req.GetDescription(), Actor: actor,
	}
	if p := req.GetProject(); p != "" {
		// The batch checks a project's limit from a request's "project" metadata.
		r.Metadata = map[string]string{ledger.MetaProject: p}
	}
	return r, nil
}

func captureRequest(req *ledgerv1.CaptureRequest, actor string) (*ledger.Request, error) {
	amt, err := amount(req.GetAmount(), false)
	if err != nil {
		return nil, err
	}
	id, err := ids.UUID("hold_id", req.GetHoldId())
	if err != nil {
		return nil, ledger.Invalid(err)
	}
	return &ledger.Request{
		Op: ledger.OpCapture, HoldID: id, Amount: amt.Nanos, Currency: amt.Currency,
		IdempotencyKey: req.GetIdempotencyKey(), Description: req.GetDescription(), Metadata: req.GetMetadata(), Actor: actor,
	}, nil
}

func releaseRequest(req *ledgerv1.ReleaseRequest, actor string) (*ledger.Request, error) {
	id, err := ids.UUID("hold_id", req.GetHoldId())
	if err != nil {
		return nil, ledger.Invalid(err)
	}
	return &ledger.Request{Op: ledger.OpRelease, HoldID: id, Actor: actor}, nil
}

// usageFromProto maps a usage; an occurred_at that is no valid time is refused here, one outside
// the accepted window when it is priced.
func usageFromProto(u *ledgerv1.Usage) (*ledger.Usage, error) {
	out := &ledger.Usage{ModelID: u.GetModelId(), Quantities: u.GetQuantities()}
	if at := u.GetOccurredAt(); at != nil {
		if err := at.CheckValid(); err != nil {
			return nil, fmt.Errorf("%w: usage.occurred_at is not a valid time", ledger.ErrInvalid)
		}
		out.OccurredAt = at.AsTime()
	}
	return out, nil
}
