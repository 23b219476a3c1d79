package main

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	ledgerv1 "github.com/tallyhq/tally/pkg/gen/tally/ledger/v1"
)

func (c *cli) moveOrgCommand() *cobra.Command {
	var to, key string
	cmd := &cobra.Command{
		Use:   "move-org ORG --to SHARD",
		Short: "Move an organization to another ledger shard",
		Long: `Move an organization to another ledger shard (TALLY_LEDGER_SHARDS): its balance (expiry
kept), active holds, history, idempotency keys and usage go with it, with no entry lost or doubled;
its writes answer Unavailable (clients retry) for the moment it moves. The same --idempotency-key
finishes an interrupted move or replays a finished one (printed "replayed" on stderr).`,
		Example: `  tallyctl move-org acme --to b
  tallyctl move-org acme --to b --idempotency-key move-acme-1`,
		Args: exactArgs("ORG"),
		RunE: c.runE(func(cmd *cobra.Command, args []string) error {
			if to == "" {
				return usagef("--to is required")
			}
			k, err := c.idempotencyKey(key)
			if err != nil {
				return err
			}
			return call(c, cmd, c.ledger, func(ctx context.Context, l ledgerv1.LedgerServiceClient) (*ledgerv1.MoveOrganizationResponse, error) {
				r, err := l.MoveOrganization(ctx, &ledgerv1.MoveOrganizationRequest{OrgId: args[0], ToShard: to, IdempotencyKey: k})
				if err == nil && r.GetReplayed() {
					fmt.Fprintln(cmd.ErrOrStderr(), "replayed")
				}
				return r, err
			}, func(r *ledgerv1.MoveOrganizationResponse) []*table {
				t := newTable("org", "from", "to", "balance", "held")
				t.add(r.GetOrgId(), r.GetFromShard(), r.GetToShard(), formatMoney(r.GetBalance()), formatMoney(r.GetHeld()))
				return []*table{t}
			})
		}),
	}
	f := cmd.Flags()
	f.StringVar(&to, "to", "", "the shard to move to (required)")
	f.StringVar(&key, "idempotency-key", "", "the move's key: the same key finishes or replays the same move (default: a new key, printed on stderr)")
	return cmd
}
