package test

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	instancesv1 "github.com/tallyhq/tally/pkg/gen/tally/instances/v1"
	ledgerv1 "github.com/tallyhq/tally/pkg/gen/tally/ledger/v1"
	"github.com/tallyhq/tally/pkg/ledgerclient/ledgerclienttest"
	"github.com/tallyhq/tally/services/instances-metering/meteringtest"
	"github.com/tallyhq/tally/services/ledger/ledgertest"
	"github.com/tallyhq/tally/services/pricing/pricingtest"
)

// A ledger answering what the service cannot decode is a fault of ours (a bug or version skew),
// never the caller's: StartMetering answers Internal, masked, whether the malformed reply is the
// debit's or the balance read for the grace.
func TestMalformedLedgerReplyIsInternal(t *testing.T) {
	t.Parallel()
	p := pricingtest.Start(t, pricingtest.Options{Secret: ledgertest.Secret})
	for instance, program := range map[string]func(*ledgerclienttest.Fake){
		"i-malformed-debit": func(f *ledgerclienttest.Fake) {
			f.Set(ledgerclienttest.Handlers{Debit: func(context.Context, *ledgerv1.DebitRequest) (*ledgerv1.DebitResponse, error) {
				return &ledgerv1.DebitResponse{TransactionId: "tx-1", Balance: ledgerclienttest.MalformedMoney()}, nil
			}})
		},
		"i-malformed-grace-balance": func(f *ledgerclienttest.Fake) {
			f.Set(ledgerclienttest.Handlers{Debit: func(context.Context, *ledgerv1.DebitRequest) (*ledgerv1.DebitResponse, error) {
				return nil, status.Error(codes.FailedPrecondition, "insufficient funds")
			}})
			f.MalformedBalance()
		},
	} {
		t.Run(instance, func(t *testing.T) {
			t.Parallel()
			fake := ledgerclienttest.Start(t)
			program(fake)
			m := meteringtest.Start(t, meteringtest.Options{
				DatabaseURL: p.DatabaseURL, Secret: ledgertest.Secret, LedgerAddr: fake.Addr(), PricingAddr: p.Addr,
				BillingPeriod: period, Grace: unit,
			})
			c := m.Client(t, ledgertest.ServiceToken(t, "instance-controller"))
			_, err := c.StartMetering(t.Context(), &instancesv1.StartMeteringRequest{
				InstanceId: instance, OrgId: "acme", InstanceType: a10g, IdempotencyKey: "start-" + instance,
			})
			requireCode(t, err, codes.Internal)
			msg := status.Convert(err).Message()
			require.True(t, strings.HasPrefix(msg, "internal error"), "masked: %q", msg)
			require.NotContains(t, msg, "XXX")
			require.Positive(t, fake.Calls("Debit"))
		})
	}
}
