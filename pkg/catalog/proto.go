package catalog

import (
	"fmt"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	pricingv1 "github.com/tallyhq/tally/pkg/gen/tally/pricing/v1"
	"github.com/tallyhq/tally/pkg/money"
	"github.com/tallyhq/tally/pkg/textcheck"
)

// Proto returns the wire enum of m, MODALITY_UNSPECIFIED when m is unknown.
func (m Modality) Proto() pricingv1.Modality {
	switch m {
	case ModalityLLM:
		return pricingv1.Modality_MODALITY_LLM
	case ModalitySpeechToText:
		return pricingv1.Modality_MODALITY_SPEECH_TO_TEXT
	case ModalityTextToSpeech:
		return pricingv1.Modality_MODALITY_TEXT_TO_SPEECH
	case ModalityImage:
		return pricingv1.Modality_MODALITY_IMAGE
	case ModalityEmbedding:
		return pricingv1.Modality_MODALITY_EMBEDDING
	case ModalityVideo:
		return pricingv1.Modality_MODALITY_VIDEO
	case ModalityRerank:
		return pricingv1.Modality_MODALITY_RERANK
	}
	return pricingv1.Modality_MODALITY_UNSPECIFIED
}

// ModalityFromProto returns the modality of a wire enum, "" for unknown values.
func ModalityFromProto(p pricingv1.Modality) Modality {
	for _, m := range Modalities() {
		if m.Proto() == p {
			return m
		}
	}
	return ""
}

func timestamp(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}

func timeFromProto(field string, ts *timestamppb.Timestamp) (time.Time, error) {
	if ts == nil {
		return time.Time{}, nil
	}
	if err := ts.CheckValid(); err != nil {
		return time.Time{}, fmt.Errorf("%w: %s: %w", ErrInvalidPrice, field, err)
	}
	return ts.AsTime(), nil
}

// Proto returns v as a wire ModelPrice.
func (v ModelVersion) Proto() *pricingv1.ModelPrice {
	dims := make([]*pricingv1.PriceDimension, len(v.Dimensions))
	for i, d := range v.Dimensions {
		dims[i] = &pricingv1.PriceDimension{Unit: d.Unit, Price: money.ToProto(d.Price, v.Currency), Per: d.Per}
	}
	return &pricingv1.ModelPrice{
		ModelId:        v.ModelID,
		DisplayName:    v.DisplayName,
		Modality:       v.Modality.Proto(),
		Dimensions:     dims,
		VersionId:      v.ID,
		EffectiveFrom:  timestamp(v.EffectiveFrom),
		CatalogVersion: v.CatalogVersion,
		CreatedAt:      timestamp(v.CreatedAt),
	}
}

// DimensionsFromProto converts wire dimensions, returning their common currency. Prices in
// different currencies are ErrInvalidPrice.
func DimensionsFromProto(ps []*pricingv1.PriceDimension) ([]Dimension, string, error) {
	dims := make([]Dimension, len(ps))
	currency := ""
	for i, p := range ps {
		m, err := money.FromProto(p.GetPrice())
		if err != nil {
			return nil, "", fmt.Errorf("%w: price of %s: %w", ErrInvalidPrice, textcheck.Quote(p.GetUnit()), err)
		}
		if i == 0 {
			currency = m.Currency
		} else if m.Currency != currency {
			return nil, "", fmt.Errorf("%w: dimensions priced in %s and %s; a model has one currency", ErrInvalidPrice, textcheck.Quote(currency), textcheck.Quote(m.Currency))
		}
		dims[i] = Dimension{Unit: p.GetUnit(), Price: m.Nanos, Per: p.GetPer()}
	}
	return dims, currency, nil
}

// ModelVersionFromProto converts a wire ModelPrice. It does not validate; New does.
func ModelVersionFromProto(p *pricingv1.ModelPrice) (ModelVersion, error) {
	dims, currency, err := DimensionsFromProto(p.GetDimensions())
	if err != nil {
		return ModelVersion{}, fmt.Errorf("model %s: %w", textcheck.Quote(p.GetModelId()), err)
	}
	eff, err := timeFromProto("effective_from", p.GetEffectiveFrom())
	if err != nil {
		return ModelVersion{}, err
	}
	created, err := timeFromProto("created_at", p.GetCreatedAt())
	if err != nil {
		return ModelVersion{}, err
	}
	return ModelVersion{
		ID:             p.GetVersionId(),
		ModelID:        p.GetModelId(),
		DisplayName:    p.GetDisplayName(),
		Modality:       ModalityFromProto(p.GetModality()),
		Currency:       currency,
		Dimensions:     dims,
		EffectiveFrom:  eff,
		CatalogVersion: p.GetCatalogVersion(),
		CreatedAt:      created,
	}, nil
}

// Proto returns v as a wire InstancePrice.
func (v InstanceVersion) Proto() *pricingv1.InstancePrice {
	return &pricingv1.InstancePrice{
		InstanceTypeId: v.InstanceTypeID,
		Description:    v.Description,
		Gpu:            v.GPU,
		GpuCount:       v.GPUCount,
		Vcpu:           v.VCPU,
		MemoryGib:      v.MemoryGiB,
		HourlyPrice:    money.ToProto(v.HourlyPrice, v.Currency),
		Available:      v.Available,
		VersionId:      v.ID,
		EffectiveFrom:  timestamp(v.EffectiveFrom),
		CatalogVersion: v.CatalogVersion,
		CreatedAt:      timestamp(v.CreatedAt),
	}
}

// InstanceVersionFromProto converts a wire InstancePrice. It does not validate; New does.
func InstanceVersionFromProto(p *pricingv1.InstancePrice) (InstanceVersion, error) {
	price, err := money.FromProto(p.GetHourlyPrice())
	if err != nil {
		return InstanceVersion{}, fmt.Errorf("%w: hourly price of %s: %w", ErrInvalidPrice, textcheck.Quote(p.GetInstanceTypeId()), err)
	}
	eff, err := timeFromProto("effective_from", p.GetEffectiveFrom())
	if err != nil {
		return InstanceVersion{}, err
	}
	created, err := timeFromProto("created_at", p.GetCreatedAt())
	if err != nil {
		return InstanceVersion{}, err
	}
	return InstanceVersion{
		ID:             p.GetVersionId(),
		InstanceTypeID: p.GetInstanceTypeId(),
		Description:    p.GetDescription(),
		GPU:            p.GetGpu(),
		GPUCount:       p.GetGpuCount(),
		VCPU:           p.GetVcpu(),
		MemoryGiB:      p.GetMemoryGib(),
		HourlyPrice:    price.Nanos,
		Currency:       price.Currency,
		Available:      p.GetAvailable(),
		EffectiveFrom:  eff,
		CatalogVersion: p.GetCatalogVersion(),
		CreatedAt:      created,
	}, nil
}

// Proto returns the whole catalog as a wire snapshot.
func (c *Catalog) Proto() *pricingv1.CatalogSnapshot {
	s := &pricingv1.CatalogSnapshot{CatalogVersion: c.version}
	for _, v := range c.ModelVersions() {
		s.Models = append(s.Models, v.Proto())
	}
	for _, v := range c.InstanceVersions() {
		s.Instances = append(s.Instances, v.Proto())
	}
	return s
}

// FromProto builds a Catalog from a wire snapshot, validating every version.
func FromProto(s *pricingv1.CatalogSnapshot) (*Catalog, error) {
	models := make([]ModelVersion, 0, len(s.GetModels()))
	for _, p := range s.GetModels() {
		v, err := ModelVersionFromProto(p)
		if err != nil {
			return nil, err
		}
		models = append(models, v)
	}
	instances := make([]InstanceVersion, 0, len(s.GetInstances()))
	for _, p := range s.GetInstances() {
		v, err := InstanceVersionFromProto(p)
		if err != nil {
			return nil, err
		}
		instances = append(instances, v)
	}
	return New(s.GetCatalogVersion(), models, instances)
}

// Proto returns q as a wire QuoteResponse.
func (q Quote) Proto() *pricingv1.QuoteResponse {
	lines := make([]*pricingv1.QuoteLine, len(q.Lines))
	for i, l := range q.Lines {
		lines[i] = &pricingv1.QuoteLine{
			Unit:      l.Unit,
			Quantity:  l.Quantity.String(),
			UnitPrice: money.ToProto(l.UnitPrice, q.Currency),
			Per:       l.Per,
			Amount:    money.ToProto(l.Amount, q.Currency),
		}
	}
	return &pricingv1.QuoteResponse{
		ModelId:        q.ModelID,
		VersionId:      q.VersionID,
		Total:          money.ToProto(q.Total, q.Currency),
		Lines:          lines,
		At:             timestamp(q.At),
		CatalogVersion: q.CatalogVersion,
	}
}
