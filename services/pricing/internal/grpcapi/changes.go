package grpcapi

import (
	"fmt"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/tallyhq/tally/pkg/catalog"
	"github.com/tallyhq/tally/pkg/fieldviolation"
	pricingv1 "github.com/tallyhq/tally/pkg/gen/tally/pricing/v1"
	"github.com/tallyhq/tally/pkg/money"
	"github.com/tallyhq/tally/services/pricing/internal/pricing"
)

// The write RPCs' requests as price changes, before Prepare validates them against the clock.

func modelChange(req *pricingv1.SetModelPriceRequest, actor string) (pricing.ModelChange, error) {
	eff, err := optionalTime("effective_from", req.GetEffectiveFrom())
	if err != nil {
		return pricing.ModelChange{}, err
	}
	dims, currency, err := catalog.DimensionsFromProto(req.GetDimensions())
	if err != nil {
		return pricing.ModelChange{}, err
	}
	return pricing.ModelChange{
		Version: catalog.ModelVersion{
			ModelID:       req.GetModelId(),
			DisplayName:   req.GetDisplayName(),
			Modality:      catalog.ModalityFromProto(req.GetModality()),
			Currency:      currency,
			Dimensions:    dims,
			EffectiveFrom: eff,
		},
		Audit: pricing.Audit{Actor: actor, Reason: req.GetReason(), IdempotencyKey: req.GetIdempotencyKey()},
	}, nil
}

func instanceChange(req *pricingv1.SetInstancePriceRequest, actor string) (pricing.InstanceChange, error) {
	eff, err := optionalTime("effective_from", req.GetEffectiveFrom())
	if err != nil {
		return pricing.InstanceChange{}, err
	}
	price, err := money.FromProto(req.GetHourlyPrice())
	if err != nil {
		return pricing.InstanceChange{}, fmt.Errorf("%w: %w", pricing.ErrInvalid, fieldviolation.Wrap("hourly_price", err))
	}
	return pricing.InstanceChange{
		Version: catalog.InstanceVersion{
			InstanceTypeID: req.GetInstanceTypeId(),
			Description:    req.GetDescription(),
			GPU:            req.GetGpu(),
			GPUCount:       req.GetGpuCount(),
			VCPU:           req.GetVcpu(),
			MemoryGiB:      req.GetMemoryGib(),
			HourlyPrice:    price.Nanos,
			Currency:       price.Currency,
			Available:      req.Available == nil || req.GetAvailable(),
			EffectiveFrom:  eff,
		},
		Audit: pricing.Audit{Actor: actor, Reason: req.GetReason(), IdempotencyKey: req.GetIdempotencyKey()},
	}, nil
}

// optionalTime reads an optional time field, zero when unset.
func optionalTime(field string, ts *timestamppb.Timestamp) (time.Time, error) {
	if ts == nil {
		return time.Time{}, nil
	}
	if err := ts.CheckValid(); err != nil {
		return time.Time{}, fmt.Errorf("%w: %s is not a valid time", pricing.ErrInvalid, field)
	}
	return ts.AsTime(), nil
}
