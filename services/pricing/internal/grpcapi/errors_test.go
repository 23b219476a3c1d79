package grpcapi

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"

	"github.com/tallyhq/tally/pkg/catalog"
	"github.com/tallyhq/tally/pkg/server/servertest"
	"github.com/tallyhq/tally/services/pricing/internal/pricing"
)

func TestErrorTable(t *testing.T) {
	t.Parallel()
	servertest.CheckErrorTable(t, Errors)
	for err, want := range map[error]codes.Code{
		fmt.Errorf("%w: model_id is required", pricing.ErrInvalid):                codes.InvalidArgument,
		fmt.Errorf("set: %w", pricing.ErrIdempotencyConflict):                     codes.AlreadyExists,
		fmt.Errorf("quote: %w", catalog.ErrUnknownModel):                          codes.NotFound,
		fmt.Errorf("quote: %w", catalog.ErrNoPriceInForce):                        codes.FailedPrecondition,
		fmt.Errorf("quote: %w", catalog.ErrTimeTooFarAhead):                       codes.InvalidArgument,
		fmt.Errorf("change: %w: %w", pricing.ErrInvalid, catalog.ErrInvalidPrice): codes.InvalidArgument,
	} {
		require.Equal(t, want, Errors.Code(err), "%v", err)
	}
}
