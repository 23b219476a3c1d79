package catalog

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tallyhq/tally/pkg/money"
)

// epoch is when the test catalog's first versions take effect.
var epoch = time.Unix(0, 0).UTC()

func mustNanos(t testing.TB, s string) money.Nanos {
	t.Helper()
	n, err := money.ParseDecimal(s)
	require.NoError(t, err)
	return n
}

func llm(t testing.TB, id, versionID string, cv int64, eff time.Time, in, out string) ModelVersion {
	return ModelVersion{
		ID: versionID, ModelID: id, DisplayName: id, Modality: ModalityLLM, Currency: "USD",
		Dimensions: []Dimension{
			{Unit: "input_tokens", Price: mustNanos(t, in), Per: 1_000_000},
			{Unit: "output_tokens", Price: mustNanos(t, out), Per: 1_000_000},
		},
		EffectiveFrom: eff, CatalogVersion: cv, CreatedAt: eff,
	}
}

func testCatalog(t testing.TB) *Catalog {
	t.Helper()
	change := epoch.Add(1000 * time.Hour)
	later := epoch.Add(2000 * time.Hour)
	c, err := New(5,
		[]ModelVersion{
			// Given out of order on purpose: New sorts.
			llm(t, "llm-a", "a2", 2, change, "0.60", "0.80"),
			llm(t, "llm-a", "a1", 1, epoch, "0.50", "0.70"),
			// Scheduled at `later`, then replaced before taking effect by a4 (same time, newer change).
			llm(t, "llm-a", "a3", 3, later, "9", "9"),
			llm(t, "llm-a", "a4", 4, later, "0.40", "0.60"),
			{
				ID: "s1", ModelID: "stt", DisplayName: "STT", Modality: ModalitySpeechToText, Currency: "USD",
				Dimensions:    []Dimension{{Unit: "audio_seconds", Price: mustNanos(t, "0.006"), Per: 60}},
				EffectiveFrom: epoch, CatalogVersion: 1,
			},
			llm(t, "future-llm", "f1", 5, later, "1", "2"),
		},
		[]InstanceVersion{
			{ID: "i1", InstanceTypeID: "gpu-a10g-small", Description: "A10G", GPU: "NVIDIA A10G", GPUCount: 1, VCPU: 8, MemoryGiB: 32,
				HourlyPrice: mustNanos(t, "1.20"), Currency: "USD", Available: true, EffectiveFrom: epoch, CatalogVersion: 1},
			{ID: "i2", InstanceTypeID: "gpu-a10g-small", Description: "A10G", GPU: "NVIDIA A10G", GPUCount: 1, VCPU: 8, MemoryGiB: 32,
				HourlyPrice: mustNanos(t, "1.10"), Currency: "USD", Available: false, EffectiveFrom: change, CatalogVersion: 2},
		})
	require.NoError(t, err)
	return c
}

func TestModelVersionInForce(t *testing.T) {
	t.Parallel()
	c := testCatalog(t)
	change := epoch.Add(1000 * time.Hour)
	later := epoch.Add(2000 * time.Hour)
	tests := []struct {
		name    string
		model   string
		at      time.Time
		want    string
		wantErr error
	}{
		{name: "first version at its start", model: "llm-a", at: epoch, want: "a1"},
		{name: "old version just before a change", model: "llm-a", at: change.Add(-time.Nanosecond), want: "a1"},
		{name: "new version at the change", model: "llm-a", at: change, want: "a2"},
		{name: "replacement of a scheduled price wins the tie", model: "llm-a", at: later, want: "a4"},
		{name: "before any version", model: "llm-a", at: epoch.Add(-time.Second), wantErr: ErrNoPriceInForce},
		{name: "model with only a scheduled price", model: "future-llm", at: change, wantErr: ErrNoPriceInForce},
		{name: "unknown model", model: "nope", at: change, wantErr: ErrUnknownModel},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			v, err := c.Model(tt.model, tt.at)
			if tt.wantErr != nil {
				require.ErrorIs(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, v.ID)
		})
	}
}

func TestModelsAtListsCurrentAndScheduled(t *testing.T) {
	t.Parallel()
	c := testCatalog(t)
	current, upcoming := c.ModelsAt(epoch.Add(1500 * time.Hour))
	require.Equal(t, []string{"a2", "s1"}, versionIDs(current))
	// a3 was replaced by a4 before taking effect, so it is not announced. Same time: by model id.
	require.Equal(t, []string{"f1", "a4"}, versionIDs(upcoming))
	require.Equal(t, []string{"a4"}, versionIDs(c.ScheduledModel("llm-a", epoch.Add(1500*time.Hour))))
	require.Len(t, c.ModelVersions(), 6)
	require.Equal(t, int64(5), c.Version())
}

func versionIDs(vs []ModelVersion) []string {
	ids := []string{}
	for _, v := range vs {
		ids = append(ids, v.ID)
	}
	return ids
}

func TestInstancePrice(t *testing.T) {
	t.Parallel()
	c := testCatalog(t)
	v, err := c.InstancePrice("gpu-a10g-small", epoch.Add(time.Hour))
	require.NoError(t, err)
	require.Equal(t, mustNanos(t, "1.20"), v.HourlyPrice)
	require.True(t, v.Available)

	v, err = c.InstancePrice("gpu-a10g-small", epoch.Add(1000*time.Hour))
	require.NoError(t, err)
	require.Equal(t, "i2", v.ID)
	require.False(t, v.Available)

	_, err = c.InstancePrice("gpu-a10g-small", epoch.Add(-time.Hour))
	require.ErrorIs(t, err, ErrNoPriceInForce)
	_, err = c.InstancePrice("tpu", epoch)
	require.ErrorIs(t, err, ErrUnknownInstanceType)

	current, upcoming := c.InstancesAt(epoch)
	require.Len(t, current, 1)
	require.Len(t, upcoming, 1)
	require.Equal(t, "i2", upcoming[0].ID)
}

func TestNewRejectsInvalidVersions(t *testing.T) {
	t.Parallel()
	good := func() ModelVersion { return llm(t, "m", "v1", 1, epoch, "1", "2") }
	tests := []struct {
		name   string
		mutate func(*ModelVersion)
	}{
		{"missing version id", func(v *ModelVersion) { v.ID = "" }},
		{"bad model id", func(v *ModelVersion) { v.ModelID = "Has/Slash" }},
		{"no display name", func(v *ModelVersion) { v.DisplayName = " " }},
		{"unknown modality", func(v *ModelVersion) { v.Modality = "hologram" }},
		{"unknown currency", func(v *ModelVersion) { v.Currency = "XYZ" }},
		{"no currency", func(v *ModelVersion) { v.Currency = "" }},
		{"no effective time", func(v *ModelVersion) { v.EffectiveFrom = time.Time{} }},
		{"no dimensions", func(v *ModelVersion) { v.Dimensions = nil }},
		{"duplicate unit", func(v *ModelVersion) { v.Dimensions[1].Unit = "input_tokens" }},
		{"bad unit", func(v *ModelVersion) { v.Dimensions[0].Unit = "Input Tokens" }},
		{"negative price", func(v *ModelVersion) { v.Dimensions[0].Price = -1 }},
		{"zero per", func(v *ModelVersion) { v.Dimensions[0].Per = 0 }},
		{"huge per", func(v *ModelVersion) { v.Dimensions[0].Per = maxPer + 1 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			v := good()
			tt.mutate(&v)
			_, err := New(1, []ModelVersion{v}, nil)
			require.ErrorIs(t, err, ErrInvalidPrice)
		})
	}
	t.Run("duplicate version id", func(t *testing.T) {
		t.Parallel()
		_, err := New(1, []ModelVersion{good(), good()}, nil)
		require.ErrorIs(t, err, ErrInvalidPrice)
	})
	t.Run("valid", func(t *testing.T) {
		t.Parallel()
		_, err := New(1, []ModelVersion{good()}, nil)
		require.NoError(t, err)
	})
}

func TestInstanceValidate(t *testing.T) {
	t.Parallel()
	good := InstanceVersion{InstanceTypeID: "cpu-8x32", Description: "8 vCPU", VCPU: 8, MemoryGiB: 32,
		HourlyPrice: 400_000_000, Currency: "USD", EffectiveFrom: epoch}
	require.NoError(t, good.Validate())
	bad := []func(*InstanceVersion){
		func(v *InstanceVersion) { v.GPUCount = 1 }, // a GPU count without a GPU model
		func(v *InstanceVersion) { v.GPU = "NVIDIA L4" },
		func(v *InstanceVersion) { v.VCPU = 0 },
		func(v *InstanceVersion) { v.MemoryGiB = -1 },
		func(v *InstanceVersion) { v.HourlyPrice = -1 },
		func(v *InstanceVersion) { v.Description = "" },
	}
	for i, mutate := range bad {
		v := good
		mutate(&v)
		require.ErrorIs(t, v.Validate(), ErrInvalidPrice, "case %d", i)
	}
}

func TestCheckUsageTime(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	require.NoError(t, CheckUsageTime(now.Add(-1000*time.Hour), now))
	require.NoError(t, CheckUsageTime(now.Add(MaxUsageLead), now))
	err := CheckUsageTime(now.Add(MaxUsageLead+time.Second), now)
	require.True(t, errors.Is(err, ErrTimeTooFarAhead), err)
}
