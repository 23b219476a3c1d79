package catalog

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	pricingv1 "github.com/tallyhq/tally/pkg/gen/tally/pricing/v1"
	"github.com/tallyhq/tally/pkg/money"
)

func TestProtoRoundTrip(t *testing.T) {
	t.Parallel()
	c := testCatalog(t)
	wire, err := proto.Marshal(c.Proto())
	require.NoError(t, err)
	var snap pricingv1.CatalogSnapshot
	require.NoError(t, proto.Unmarshal(wire, &snap))
	back, err := FromProto(&snap)
	require.NoError(t, err)

	require.Equal(t, c.Version(), back.Version())
	require.Equal(t, normalize(c.ModelVersions()), normalize(back.ModelVersions()))
	require.Equal(t, c.InstanceVersions()[0].HourlyPrice, back.InstanceVersions()[0].HourlyPrice)
	require.Len(t, back.InstanceVersions(), len(c.InstanceVersions()))

	at := epoch.Add(1500 * time.Hour)
	usage := Usage{"input_tokens": QuantityOf(1_000_001), "output_tokens": QuantityOf(3)}
	q1, err := c.Quote("llm-a", usage, at)
	require.NoError(t, err)
	q2, err := back.Quote("llm-a", usage, at)
	require.NoError(t, err)
	require.Equal(t, q1, q2)

	resp := q1.Proto()
	total, err := money.FromProto(resp.GetTotal())
	require.NoError(t, err)
	require.Equal(t, q1.Total, total.Nanos)
	require.Equal(t, "1000001", resp.GetLines()[0].GetQuantity())
	require.Equal(t, "a2", resp.GetVersionId())
}

func TestFromProtoRejectsMixedCurrencies(t *testing.T) {
	t.Parallel()
	v := llm(t, "m", "v1", 1, epoch, "1", "2").Proto()
	v.Dimensions[1].Price.CurrencyCode = "EUR"
	_, err := FromProto(&pricingv1.CatalogSnapshot{CatalogVersion: 1, Models: []*pricingv1.ModelPrice{v}})
	require.ErrorIs(t, err, ErrInvalidPrice)
}

func TestModalityProto(t *testing.T) {
	t.Parallel()
	for _, m := range Modalities() {
		require.NotEqual(t, pricingv1.Modality_MODALITY_UNSPECIFIED, m.Proto(), m)
		require.Equal(t, m, ModalityFromProto(m.Proto()))
	}
	require.Len(t, pricingv1.Modality_name, len(Modalities())+1, "every wire modality has a catalog modality")
	require.Equal(t, Modality(""), ModalityFromProto(pricingv1.Modality_MODALITY_UNSPECIFIED))
}

// normalize drops time zones, which do not survive the wire.
func normalize(vs []ModelVersion) []ModelVersion {
	for i := range vs {
		vs[i].EffectiveFrom = vs[i].EffectiveFrom.UTC()
		vs[i].CreatedAt = vs[i].CreatedAt.UTC()
	}
	return vs
}
