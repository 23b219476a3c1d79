package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"

	"github.com/spf13/cobra"
	moneypb "google.golang.org/genproto/googleapis/type/money"
	"google.golang.org/protobuf/proto"

	ledgerv1 "github.com/tallyhq/tally/pkg/gen/tally/ledger/v1"
)

func (c *cli) ledger() (ledgerv1.LedgerServiceClient, error) {
	conn, err := c.conn("ledger")
	if err != nil {
		return nil, err
	}
	return ledgerv1.NewLedgerServiceClient(conn), nil
}

func (c *cli) balanceCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "balance ORG",
		Short: "Show an organization's balance, available and held amounts and expiry",
		Long: `Show an organization's balance (the sum of its postings), the available amount (balance
minus active holds; zero once the credits expired), the held amount, when the credits expire and
the account's version. An unknown organization has a zero balance.`,
		Example: `  tallyctl balance acme
  tallyctl balance acme -o json`,
		Args: exactArgs("ORG"),
		RunE: c.runE(func(cmd *cobra.Command, args []string) error {
			return call(c, cmd, c.ledger, func(ctx context.Context, l ledgerv1.LedgerServiceClient) (*ledgerv1.GetBalanceResponse, error) {
				return l.GetBalance(ctx, &ledgerv1.GetBalanceRequest{OrgId: args[0]})
			}, func(r *ledgerv1.GetBalanceResponse) []*table { return []*table{balanceTable(r)} })
		}),
	}
}

func balanceTable(b *ledgerv1.GetBalanceResponse) *table {
	t := newTable("org", "balance", "available", "held", "expires", "version")
	t.add(b.GetOrgId(), formatMoney(b.GetBalance()), formatMoney(b.GetAvailable()), formatMoney(b.GetHeld()),
		formatTime(b.GetExpiresAt()), formatInt(b.GetVersion()))
	return t
}

func (c *cli) transactionsCommand() *cobra.Command {
	var (
		kind      string
		pageSize  int32
		pageToken string
	)
	cmd := &cobra.Command{
		Use:     "transactions ORG",
		Aliases: []string{"txs"},
		Short:   "List an organization's transactions, newest first",
		Long: `List an organization's ledger transactions, newest first: kind, signed amount, balance
after it, what it was for (description or reason), idempotency key, who asked for it (actor).
When there are more than --page-size, the next page's token is printed on stderr.`,
		Example: `  tallyctl transactions acme
  tallyctl transactions acme --kind adjustment --page-size 20
  tallyctl transactions acme --page-token <token from the previous page>`,
		Args: exactArgs("ORG"),
		RunE: c.runE(func(cmd *cobra.Command, args []string) error {
			k, err := parseEnum("kind", kind, "TRANSACTION_KIND_", ledgerv1.TransactionKind_value)
			if err != nil {
				return err
			}
			req := &ledgerv1.ListTransactionsRequest{OrgId: args[0], PageSize: pageSize, PageToken: pageToken, Kind: ledgerv1.TransactionKind(k)}
			return call(c, cmd, c.ledger, func(ctx context.Context, l ledgerv1.LedgerServiceClient) (*ledgerv1.ListTransactionsResponse, error) {
				return l.ListTransactions(ctx, req)
			}, func(r *ledgerv1.ListTransactionsResponse) []*table {
				return []*table{transactionsTable(r.GetTransactions())}
			})
		}),
	}
	f := cmd.Flags()
	f.StringVar(&kind, "kind", "", "only this kind: credit, debit, adjustment, expiry or capture")
	f.Int32Var(&pageSize, "page-size", 0, "transactions per page (at most 500; default 50)")
	f.StringVar(&pageToken, "page-token", "", "the page to show (printed after the previous one)")
	return cmd
}

func transactionsTable(txs []*ledgerv1.Transaction) *table {
	t := newTable("created", "kind", "amount", "balance after", "what", "idempotency key", "actor", "id")
	for _, tx := range txs {
		what := tx.GetDescription()
		if tx.GetReason() != "" {
			what = tx.GetReason()
		}
		t.add(formatTime(tx.GetCreatedAt()), enumName(tx.GetKind().String(), "TRANSACTION_KIND_"), formatMoney(tx.GetAmount()),
			formatMoney(tx.GetBalanceAfter()), what, tx.GetIdempotencyKey(), tx.GetActor(), tx.GetId())
	}
	return t
}

// writeFlags are the flags of a ledger write: the amount, the reason and the idempotency key.
type writeFlags struct {
	amount, currency, reason, key string
}

func (w *writeFlags) register(cmd *cobra.Command, amountHelp string) {
	f := cmd.Flags()
	f.StringVar(&w.amount, "amount", "", amountHelp)
	f.StringVar(&w.currency, "currency", "", "ISO 4217 code of the amount (default the organization's currency)")
	f.StringVar(&w.reason, "reason", "", "why (required; recorded with the transaction)")
	f.StringVar(&w.key, "idempotency-key", "", "the request's key: a retry with the same key is the same request (default: a new key, printed on stderr)")
}

// idempotencyKey returns the key of a write: the given one, or a new one printed on stderr
// before anything is sent, so that a retry after a timeout can reuse it.
func (c *cli) idempotencyKey(given string) (string, error) {
	if given != "" {
		return given, nil
	}
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("making an idempotency key: %w", err)
	}
	key := "tallyctl-" + hex.EncodeToString(b)
	c.note(fmt.Sprintf("idempotency key: %s (to retry this request safely, repeat it with --idempotency-key %s)", key, key))
	return key, nil
}

// ledgerWrite checks a grant's or an adjustment's flags, then sends it with its key and prints
// the transaction.
func ledgerWrite[R interface {
	proto.Message
	GetTransaction() *ledgerv1.Transaction
}](c *cli, cmd *cobra.Command, w *writeFlags, send func(context.Context, ledgerv1.LedgerServiceClient, *moneypb.Money, string) (R, error)) error {
	amount, err := parseAmount("amount", w.amount, w.currency)
	if err != nil {
		return err
	}
	if w.reason == "" {
		return usagef("--reason is required")
	}
	return call(c, cmd, c.ledger, func(ctx context.Context, l ledgerv1.LedgerServiceClient) (R, error) {
		key, err := c.idempotencyKey(w.key)
		if err != nil {
			var none R
			return none, err
		}
		return send(ctx, l, amount, key)
	}, func(r R) []*table { return []*table{transactionsTable([]*ledgerv1.Transaction{r.GetTransaction()})} })
}

func (c *cli) grantCommand() *cobra.Command {
	var w writeFlags
	cmd := &cobra.Command{
		Use:   "grant ORG --amount AMOUNT --reason REASON",
		Short: "Grant free credits to an organization",
		Long: `Grant free credits to an organization: a ledger credit from the platform's grants account.
Like any credit it renews the validity of the whole balance. The same --idempotency-key with the
same amount and reason returns the original transaction (nothing is granted twice); with other
parameters it is refused (AlreadyExists).`,
		Example: `  tallyctl grant acme --amount 25 --reason "welcome credits"
  tallyctl grant acme --amount 10.50 --reason "incident 42 goodwill" --idempotency-key incident-42-acme`,
		Args: exactArgs("ORG"),
		RunE: c.runE(func(cmd *cobra.Command, args []string) error {
			return ledgerWrite(c, cmd, &w, func(ctx context.Context, l ledgerv1.LedgerServiceClient, amount *moneypb.Money, key string) (*ledgerv1.CreditResponse, error) {
				return l.Credit(ctx, &ledgerv1.CreditRequest{OrgId: args[0], Amount: amount, IdempotencyKey: key, Reason: w.reason,
					Source: ledgerv1.CreditSource_CREDIT_SOURCE_GRANT})
			})
		}),
	}
	w.register(cmd, "credits to grant, a positive decimal of the currency (e.g. 25 or 0.50)")
	return cmd
}

func (c *cli) adjustCommand() *cobra.Command {
	var w writeFlags
	cmd := &cobra.Command{
		Use:   "adjust ORG --amount SIGNED_AMOUNT --reason REASON",
		Short: "Correct an organization's balance with an audited adjustment",
		Long: `Correct an organization's balance: a signed amount (positive adds credits, negative takes
them away) with a mandatory reason, recorded with your token's subject as the actor. Adjustments
do not change the validity of the credits. The same --idempotency-key with the same parameters
returns the original transaction: replaying a command never adjusts twice.`,
		Example: `  tallyctl adjust acme --amount -5 --reason "double-charged rental, ticket 1234"
  tallyctl adjust acme --amount 2.50 --reason "refund of a failed call" --idempotency-key ticket-1235`,
		Args: exactArgs("ORG"),
		RunE: c.runE(func(cmd *cobra.Command, args []string) error {
			return ledgerWrite(c, cmd, &w, func(ctx context.Context, l ledgerv1.LedgerServiceClient, amount *moneypb.Money, key string) (*ledgerv1.AdjustResponse, error) {
				return l.Adjust(ctx, &ledgerv1.AdjustRequest{OrgId: args[0], Amount: amount, Reason: w.reason, IdempotencyKey: key})
			})
		}),
	}
	w.register(cmd, "signed decimal of the currency: positive adds credits, negative takes them away (e.g. -5)")
	return cmd
}

// exactArgs accepts exactly the named positional arguments.
func exactArgs(names ...string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != len(names) {
			return usagef("usage: %s (%d argument(s) given, %d wanted)", cmd.UseLine(), len(args), len(names))
		}
		return nil
	}
}
