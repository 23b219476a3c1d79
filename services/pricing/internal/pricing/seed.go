package pricing

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/tallyhq/tally/pkg/catalog"
	"github.com/tallyhq/tally/pkg/money"
)

// SeedEffectiveFrom returns when seed prices take effect: the Unix epoch, so that every usage
// time has a price once the catalog is seeded.
func SeedEffectiveFrom() time.Time { return time.Unix(0, 0).UTC() }

// Seed is the initial catalog, loaded when the catalog is empty.
type Seed struct {
	Models    []catalog.ModelVersion
	Instances []catalog.InstanceVersion
}

// seedFile is the YAML layout of a seed file. Prices are decimal strings, never floats.
type seedFile struct {
	Currency string `yaml:"currency"`
	Models   []struct {
		ID          string `yaml:"id"`
		DisplayName string `yaml:"display_name"`
		Modality    string `yaml:"modality"`
		Dimensions  []struct {
			Unit  string `yaml:"unit"`
			Price string `yaml:"price"`
			Per   int64  `yaml:"per"`
		} `yaml:"dimensions"`
	} `yaml:"models"`
	Instances []struct {
		ID          string `yaml:"id"`
		Description string `yaml:"description"`
		GPU         string `yaml:"gpu"`
		GPUCount    int32  `yaml:"gpu_count"`
		VCPU        int32  `yaml:"vcpu"`
		MemoryGiB   int32  `yaml:"memory_gib"`
		HourlyPrice string `yaml:"hourly_price"`
		Available   *bool  `yaml:"available"`
	} `yaml:"instances"`
}

// ParseSeed reads a YAML seed file (see services/pricing/seed/catalog.yaml). Prices are read as
// exact decimals from their text; unknown fields and invalid entries are errors. Every entry
// takes effect at SeedEffectiveFrom.
func ParseSeed(data []byte) (Seed, error) {
	var f seedFile
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil && !errors.Is(err, io.EOF) {
		return Seed{}, fmt.Errorf("parsing seed catalog: %w", err)
	}
	cur := strings.ToUpper(f.Currency)
	if cur == "" {
		cur = "USD"
	}
	var s Seed
	for _, m := range f.Models {
		v := catalog.ModelVersion{
			ModelID:       m.ID,
			DisplayName:   m.DisplayName,
			Modality:      catalog.Modality(m.Modality),
			Currency:      cur,
			EffectiveFrom: SeedEffectiveFrom(),
		}
		for _, d := range m.Dimensions {
			price, err := money.ParseDecimal(d.Price)
			if err != nil {
				return Seed{}, fmt.Errorf("seed model %q, unit %q: %w", m.ID, d.Unit, err)
			}
			v.Dimensions = append(v.Dimensions, catalog.Dimension{Unit: d.Unit, Price: price, Per: d.Per})
		}
		if err := v.Validate(); err != nil {
			return Seed{}, fmt.Errorf("seed model %q: %w", m.ID, err)
		}
		s.Models = append(s.Models, v)
	}
	for _, in := range f.Instances {
		price, err := money.ParseDecimal(in.HourlyPrice)
		if err != nil {
			return Seed{}, fmt.Errorf("seed instance type %q: %w", in.ID, err)
		}
		v := catalog.InstanceVersion{
			InstanceTypeID: in.ID,
			Description:    in.Description,
			GPU:            in.GPU,
			GPUCount:       in.GPUCount,
			VCPU:           in.VCPU,
			MemoryGiB:      in.MemoryGiB,
			HourlyPrice:    price,
			Currency:       cur,
			Available:      in.Available == nil || *in.Available,
			EffectiveFrom:  SeedEffectiveFrom(),
		}
		if err := v.Validate(); err != nil {
			return Seed{}, fmt.Errorf("seed instance type %q: %w", in.ID, err)
		}
		s.Instances = append(s.Instances, v)
	}
	if err := s.checkUnique(); err != nil {
		return Seed{}, err
	}
	return s, nil
}

func (s Seed) checkUnique() error {
	seen := map[string]bool{}
	for _, m := range s.Models {
		if seen["m:"+m.ModelID] {
			return fmt.Errorf("%w: seed model %q appears twice", ErrInvalid, m.ModelID)
		}
		seen["m:"+m.ModelID] = true
	}
	for _, in := range s.Instances {
		if seen["i:"+in.InstanceTypeID] {
			return fmt.Errorf("%w: seed instance type %q appears twice", ErrInvalid, in.InstanceTypeID)
		}
		seen["i:"+in.InstanceTypeID] = true
	}
	return nil
}
