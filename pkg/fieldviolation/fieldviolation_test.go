package fieldviolation_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tallyhq/tally/pkg/fieldviolation"
	"github.com/tallyhq/tally/pkg/ids"
	"github.com/tallyhq/tally/pkg/textcheck"
)

func TestAll(t *testing.T) {
	t.Parallel()
	errInvalid := errors.New("invalid request")
	errMissing := errors.New("amount is required")
	for _, tc := range []struct {
		name string
		err  error
		want []fieldviolation.Pair
	}{
		{"nil", nil, nil},
		{"no field", errInvalid, nil},
		{"ids error behind a domain sentinel", fmt.Errorf("%w: %w", errInvalid, ids.OrgID("")),
			[]fieldviolation.Pair{{Field: "org_id", Description: "org_id is required"}}},
		{"wrapped money error", fmt.Errorf("%w: %w", errInvalid, fieldviolation.Wrap("amount", errMissing)),
			[]fieldviolation.Pair{{Field: "amount", Description: "amount is required"}}},
		{"the outer field wins", fieldviolation.Wrap("usage", ids.IdempotencyKey("idempotency_key", "")),
			[]fieldviolation.Pair{{Field: "usage", Description: "idempotency_key is required"}}},
		{"joined", errors.Join(ids.OrgID(""), &textcheck.Error{Field: "dimensions[1].unit", Problem: "contains a NUL character"}),
			[]fieldviolation.Pair{{Field: "org_id", Description: "org_id is required"},
				{Field: "dimensions[1].unit", Description: "dimensions[1].unit contains a NUL character"}}},
		{"invalid", fmt.Errorf("%w: %w", errInvalid, fieldviolation.Invalid("amount", "must be positive")),
			[]fieldviolation.Pair{{Field: "amount", Description: "amount must be positive"}}},
		{"map key", &textcheck.Error{Field: "metadata key", Problem: "contains a NUL character"},
			[]fieldviolation.Pair{{Field: "metadata", Description: "metadata key contains a NUL character"}}},
		{"no field path", &textcheck.Error{Field: "the path", Problem: "contains a control character"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tc.want, fieldviolation.All(tc.err))
		})
	}
	require.NoError(t, fieldviolation.Wrap("amount", nil))
	err := fieldviolation.Wrap("amount", errMissing)
	require.ErrorIs(t, err, errMissing)
	require.EqualError(t, err, "amount: amount is required")
}
