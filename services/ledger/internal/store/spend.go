package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/tallyhq/tally/pkg/money"
	"github.com/tallyhq/tally/services/ledger/internal/ledger"
)

// spendColumns read an account's spend limit and its spending of the month (accountColumns);
// spend_month is a date, read as seconds since the epoch (0 when NULL).
const spendColumns = `spend_limit, spend_alert_percent::int, coalesce(extract(epoch from spend_month)::bigint, 0), month_spend, spend_alerted`

// spendAssignments write what a batch changes of them (its spending, not its limit), from the
// unnest columns sm (seconds), ms and sa of queueUpdateAccounts.
const spendAssignments = `spend_month = CASE WHEN u.sm = 0 THEN NULL ELSE 'epoch'::date + (u.sm / 86400)::int END,
    month_spend = u.ms, spend_alerted = u.sa`

type spendRow struct {
	limit, month, amount int64
	percent              int32
	alerted              bool
}

func (r *spendRow) dest() []any {
	return []any{&r.limit, &r.percent, &r.month, &r.amount, &r.alerted}
}

func (r *spendRow) into(a *ledger.Account) {
	a.Limit = ledger.SpendLimit{Amount: money.Nanos(r.limit), AlertPercent: r.percent}
	a.Spend = ledger.Spend{Amount: money.Nanos(r.amount), Alerted: r.alerted}
	if r.month != 0 {
		a.Spend.Month = time.Unix(r.month, 0).UTC()
	}
}

// spendArrays are the spend columns of the accounts a batch touched, in Touched order.
type spendArrays struct {
	months, amounts []int64
	alerted         []bool
}

func newSpendColumns(b *ledger.Batch) spendArrays {
	var c spendArrays
	for _, org := range b.Touched {
		a, _ := b.Account(org)
		var month int64
		if !a.Spend.Month.IsZero() {
			month = a.Spend.Month.Unix()
		}
		c.months, c.amounts, c.alerted = append(c.months, month), append(c.amounts, int64(a.Spend.Amount)), append(c.alerted, a.Spend.Alerted)
	}
	return c
}

// eventSpendLimits is the spend_limit column of events (0 on all but spend alerts).
func eventSpendLimits(events []ledger.Event) []int64 {
	out := make([]int64, len(events))
	for i, e := range events {
		out[i] = int64(e.SpendLimit)
	}
	return out
}

// ChangeSpendLimit is the decision of UpdateSpendLimit over the locked account: whether it
// changed (written then) and the spend alert to commit with it, if any.
type ChangeSpendLimit func(*ledger.Account) (alert *ledger.Event, changed bool, err error)

// UpdateSpendLimit opens org's account when it has none (in currency, "" for the default one),
// locks it, lets change decide and writes what it changed — the limit, the alert state and the
// version — with the alert event, in one transaction. It returns the account as committed and
// the cache epoch read in that transaction before the lock (see freshness.go in app).
//
// A lost answer to the COMMIT is ledger.ErrOutcomeUnknown (and ledger.ErrUnavailable).
func (s *Store) UpdateSpendLimit(parent context.Context, orgID, currency string, change ChangeSpendLimit) (acct ledger.Account, epoch int64, err error) {
	ctx, cancel := s.deadline(parent)
	defer cancel()
	if err := s.openAccounts(ctx, []ledger.NewAccount{{OrgID: orgID, Currency: currency}}); err != nil {
		return ledger.Account{}, 0, fail(parent, err)
	}
	tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{})
	if err != nil {
		return ledger.Account{}, 0, fail(parent, fmt.Errorf("beginning spend limit update: %w", err))
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	if err := tx.QueryRow(ctx, `SELECT epoch FROM cache_epoch WHERE id = 1`).Scan(&epoch); err != nil {
		return ledger.Account{}, 0, fail(parent, fmt.Errorf("reading the cache epoch: %w", err))
	}
	acct, err = scanAccount(tx.QueryRow(ctx, `SELECT `+accountColumns+` FROM accounts WHERE kind = 'org' AND org_id = $1 FOR UPDATE`, orgID))
	if err != nil {
		return ledger.Account{}, 0, fail(parent, fmt.Errorf("locking the account: %w", err))
	}
	if err := acct.Resident(); err != nil {
		return ledger.Account{}, 0, err // moved away (the router follows) or moving in
	}
	// The account goes to the balance cache with all it holds, its project limits included.
	if err := readLateProjectLimits(ctx, tx, nil, map[string]*ledger.Account{acct.OrgID: &acct}); err != nil {
		return ledger.Account{}, 0, fail(parent, err)
	}
	alert, changed, err := change(&acct)
	if err != nil || !changed {
		return acct, epoch, err
	}
	batch := &pgx.Batch{}
	batch.Queue(`UPDATE accounts SET spend_limit = $2, spend_alert_percent = $3, spend_alerted = $4, version = $5 WHERE id = $1`,
		acct.ID, int64(acct.Limit.Amount), acct.Limit.AlertPercent, acct.Spend.Alerted, acct.Version)
	if alert != nil {
		if err := queueInsertEvents(batch, []ledger.Event{*alert}); err != nil {
			return ledger.Account{}, 0, err
		}
	}
	if err := tx.SendBatch(ctx, batch).Close(); err != nil {
		return ledger.Account{}, 0, fail(parent, fmt.Errorf("writing the spend limit: %w", err))
	}
	if err := tx.Commit(ctx); err != nil {
		err = fail(parent, fmt.Errorf("committing the spend limit: %w", err))
		if errors.Is(err, ledger.ErrUnavailable) && !pgconn.SafeToRetry(err) {
			err = fmt.Errorf("%w: %w", ledger.ErrOutcomeUnknown, err)
		}
		return ledger.Account{}, 0, err
	}
	return acct, epoch, nil
}
