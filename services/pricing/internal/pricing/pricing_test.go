package pricing

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tallyhq/tally/pkg/catalog"
	"github.com/tallyhq/tally/services/pricing/seed"
)

func TestEmbeddedSeedParses(t *testing.T) {
	t.Parallel()
	s, err := ParseSeed(seed.Catalog)
	require.NoError(t, err)
	modalities := map[catalog.Modality]int{}
	for _, m := range s.Models {
		modalities[m.Modality]++
		require.Equal(t, SeedEffectiveFrom(), m.EffectiveFrom)
	}
	require.Equal(t, 3, modalities[catalog.ModalityLLM])
	require.Equal(t, 1, modalities[catalog.ModalitySpeechToText])
	require.Equal(t, 1, modalities[catalog.ModalityTextToSpeech])
	require.Equal(t, 1, modalities[catalog.ModalityEmbedding])
	require.Equal(t, 1, modalities[catalog.ModalityImage])
	require.GreaterOrEqual(t, len(s.Instances), 4)
}

func TestParseSeedRejectsBadFiles(t *testing.T) {
	t.Parallel()
	tests := map[string]string{
		"unknown field":    "models:\n  - id: m\n    price: 1\n",
		"inexact price":    "models:\n  - {id: m, display_name: M, modality: llm, dimensions: [{unit: requests, price: '0.0000000001', per: 1}]}\n",
		"unknown modality": "models:\n  - {id: m, display_name: M, modality: smell, dimensions: [{unit: requests, price: '1', per: 1}]}\n",
		"duplicate model": "models:\n  - {id: m, display_name: M, modality: llm, dimensions: [{unit: requests, price: '1', per: 1}]}\n" +
			"  - {id: m, display_name: M, modality: llm, dimensions: [{unit: requests, price: '1', per: 1}]}\n",
		"instance without price": "instances:\n  - {id: cpu, description: CPU, vcpu: 1, memory_gib: 1}\n",
		"not yaml":               "models: [",
	}
	for name, data := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			_, err := ParseSeed([]byte(data))
			require.Error(t, err)
		})
	}
}

func TestPrepareResolvesEffectiveTime(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	change := func(eff time.Time) ModelChange {
		return ModelChange{
			Version: catalog.ModelVersion{ModelID: "m", DisplayName: "M", Modality: catalog.ModalityLLM, Currency: "USD",
				Dimensions: []catalog.Dimension{{Unit: "input_tokens", Price: 1, Per: 1}}, EffectiveFrom: eff},
			Audit: Audit{Actor: "user:ops", Reason: "r", IdempotencyKey: "k"},
		}
	}
	tests := []struct {
		name    string
		eff     time.Time
		want    time.Time
		wantErr bool
	}{
		{name: "omitted means now", eff: time.Time{}, want: now},
		{name: "future is scheduled", eff: now.Add(time.Hour), want: now.Add(time.Hour)},
		{name: "clock skew is now", eff: now.Add(-30 * time.Second), want: now},
		{name: "the past is refused", eff: now.Add(-2 * MaxBackdate), wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, hash, err := change(tt.eff).Prepare(now)
			if tt.wantErr {
				require.ErrorIs(t, err, ErrInvalid)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, got.Version.EffectiveFrom)
			// The fingerprint is of the request as sent: a retry a minute later still matches.
			_, again, err := change(tt.eff).Prepare(now.Add(time.Minute / 2))
			require.NoError(t, err)
			require.Equal(t, hash, again)
		})
	}
}

func TestPrepareRequiresAudit(t *testing.T) {
	t.Parallel()
	base := ModelChange{Version: catalog.ModelVersion{ModelID: "m", DisplayName: "M", Modality: catalog.ModalityLLM, Currency: "USD",
		Dimensions: []catalog.Dimension{{Unit: "input_tokens", Price: 1, Per: 1}}}}
	for name, a := range map[string]Audit{
		"no actor":  {Reason: "r", IdempotencyKey: "k"},
		"no reason": {Actor: "a", IdempotencyKey: "k"},
		"no key":    {Actor: "a", Reason: "r"},
	} {
		c := base
		c.Audit = a
		_, _, err := c.Prepare(time.Now())
		require.ErrorIs(t, err, ErrInvalid, name)
	}
}
