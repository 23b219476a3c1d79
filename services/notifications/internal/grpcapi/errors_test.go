package grpcapi_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"

	"github.com/tallyhq/tally/pkg/ids"
	"github.com/tallyhq/tally/pkg/ledgerclient"
	"github.com/tallyhq/tally/pkg/money"
	"github.com/tallyhq/tally/pkg/server/servertest"
	"github.com/tallyhq/tally/services/notifications/internal/grpcapi"
	"github.com/tallyhq/tally/services/notifications/internal/notify"
)

func TestErrorsConformToTheSharedCases(t *testing.T) {
	t.Parallel()
	servertest.CheckErrorTable(t, grpcapi.Errors)
}

// The notifications errors, and the ledger's as the app passes them on (app.Ledger, with
// server.CommonErrors).
func TestErrors(t *testing.T) {
	t.Parallel()
	const ledgerText = "ledger.internal:9091 said no"
	unavailable := &ledgerclient.Error{Op: "balance", Code: codes.Unavailable, Msg: ledgerText, Kind: ledgerclient.ErrUnavailable}
	credentials := &ledgerclient.Error{Op: "balance", Code: codes.Unauthenticated, Msg: ledgerText, Kind: ledgerclient.ErrUnavailable, Credentials: true}
	badReply := &ledgerclient.Error{Op: "balance", Msg: fmt.Sprintf("%v", money.ErrUnknownCurrency), Kind: ledgerclient.ErrBadReply}
	cases := []struct {
		name string
		err  error
		code codes.Code
	}{
		{"invalid", fmt.Errorf("%w: email is required", notify.ErrInvalid), codes.InvalidArgument},
		{"invalid id", ids.OrgID("-acme"), codes.InvalidArgument},
		{"another member's settings", fmt.Errorf("%w: not yours", notify.ErrPermissionDenied), codes.PermissionDenied},
		{"no settings", fmt.Errorf("%w: member bob", notify.ErrNotFound), codes.NotFound},
		{"ledger down", fmt.Errorf("reading the balance of acme: %w", unavailable), codes.Unavailable},
		{"our token refused by the ledger", fmt.Errorf("reading the balance of acme: %w", credentials), codes.Unavailable},
		{"malformed ledger reply", fmt.Errorf("reading the balance of acme: %w", badReply), codes.Internal},
		{"malformed ledger reply from the stream", fmt.Errorf("receiving ledger events: %w", badReply), codes.Internal},
		{"a ledger refusal is no InvalidArgument", &ledgerclient.Error{Op: "balance", Code: codes.InvalidArgument, Msg: ledgerText, Kind: ledgerclient.ErrRefused}, codes.FailedPrecondition},
		{"unknown", errors.New("boom"), codes.Internal},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			st, _ := grpcapi.Errors.Status(context.Background(), tc.err)
			require.Equal(t, tc.code, st.Code(), "%v", tc.err)
			if tc.code == codes.Unavailable || tc.code == codes.Internal {
				require.False(t, strings.Contains(st.Message(), ledgerText) || strings.Contains(st.Message(), "currency"), "masked: %q", st.Message())
			}
		})
	}
}
