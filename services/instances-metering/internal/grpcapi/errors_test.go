package grpcapi

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"

	"github.com/tallyhq/tally/pkg/catalog"
	"github.com/tallyhq/tally/pkg/ledgerclient"
	"github.com/tallyhq/tally/pkg/server/servertest"
	"github.com/tallyhq/tally/services/instances-metering/internal/rental"
)

func TestErrorTable(t *testing.T) {
	t.Parallel()
	servertest.CheckErrorTable(t, Errors)
	ledgerFP := &ledgerclient.Error{Op: "debiting", Code: codes.FailedPrecondition, Kind: ledgerclient.ErrFailedPrecondition}
	for err, want := range map[error]codes.Code{
		fmt.Errorf("%w: instance_id is required", rental.ErrInvalid):                      codes.InvalidArgument,
		fmt.Errorf("%w: %w", rental.ErrInsufficientCredits, ledgerFP):                     codes.FailedPrecondition,
		fmt.Errorf("%w: %w", rental.ErrChargeRefused, ledgerFP):                           codes.FailedPrecondition,
		fmt.Errorf("pending: %w", &ledgerclient.Error{Kind: ledgerclient.ErrUnavailable}): codes.Unavailable,
		fmt.Errorf("pending: %w", &ledgerclient.Error{Kind: ledgerclient.ErrBadReply}):    codes.Internal,
		fmt.Errorf("x: %w", catalog.ErrUnknownInstanceType):                               codes.NotFound,
		rental.ErrStarting: codes.Unavailable,
		rental.ErrConflict: codes.AlreadyExists,
	} {
		require.Equal(t, want, Errors.Code(err), "%v", err)
	}
}
