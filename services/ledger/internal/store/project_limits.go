package store

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tallyhq/tally/pkg/money"
	"github.com/tallyhq/tally/services/ledger/internal/ledger"
)

// projectLimitColumns read a project limit; spend_month as seconds since the epoch.
const projectLimitColumns = `org_id, project, monthly_limit, extract(epoch from spend_month)::bigint, month_spend`

func scanProjectLimit(row pgx.Row) (orgID string, p ledger.ProjectLimit, err error) {
	var limit, month, spend int64
	if err := row.Scan(&orgID, &p.Project, &limit, &month, &spend); err != nil {
		return "", ledger.ProjectLimit{}, err
	}
	p.Amount = money.Nanos(limit)
	p.Spend = ledger.Spend{Month: time.Unix(month, 0).UTC(), Amount: money.Nanos(spend)}
	return orgID, p, nil
}

// queueReadProjectLimits reads the project limits of the accounts queueLockAccounts locks
// (queued after it, so it reads under their row locks, which every writer of project_limits
// holds) into their Projects.
func queueReadProjectLimits(batch *pgx.Batch, orgs, holdIDs []string, into map[string]*ledger.Account) {
	batch.Queue(`SELECT `+projectLimitColumns+` FROM project_limits
WHERE org_id = ANY($1::text[] || ARRAY(SELECT h.org_id FROM holds h WHERE h.id = ANY($2::text[]::uuid[])))`, orgs, holdIDs).Query(func(rows pgx.Rows) error {
		for rows.Next() {
			org, p, err := scanProjectLimit(rows)
			if err != nil {
				return fmt.Errorf("scanning project limit: %w", err)
			}
			if a, ok := into[org]; ok {
				if a.Projects == nil {
					a.Projects = map[string]*ledger.ProjectLimit{}
				}
				a.Projects[p.Project] = &p
			}
		}
		return rows.Err()
	})
}

// queueUpdateProjectSpend writes the project charges the batch counted.
func queueUpdateProjectSpend(batch *pgx.Batch, b *ledger.Batch) {
	var orgs, projects []string
	var months, spends []int64
	for _, org := range b.Touched {
		a, _ := b.Account(org)
		for _, p := range a.Projects {
			if p.Changed {
				orgs, projects = append(orgs, org), append(projects, p.Project)
				months, spends = append(months, p.Spend.Month.Unix()), append(spends, int64(p.Spend.Amount))
			}
		}
	}
	if len(orgs) == 0 {
		return
	}
	batch.Queue(`UPDATE project_limits p SET spend_month = 'epoch'::date + (u.m / 86400)::int, month_spend = u.s, updated_at = now()
FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[]) AS u(o, p, m, s) WHERE p.org_id = u.o AND p.project = u.p`,
		orgs, projects, months, spends)
}

// ProjectLimits returns the organization's project limits (with their charges), by project.
func (s *Store) ProjectLimits(parent context.Context, orgID string) ([]ledger.ProjectLimit, error) {
	ctx, cancel := s.deadline(parent)
	defer cancel()
	rows, err := s.pool.Query(ctx, `SELECT `+projectLimitColumns+` FROM project_limits WHERE org_id = $1 ORDER BY project`, orgID)
	if err != nil {
		return nil, fail(parent, fmt.Errorf("reading project limits: %w", err))
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (ledger.ProjectLimit, error) {
		_, p, err := scanProjectLimit(r)
		return p, err
	})
	if err != nil {
		return nil, fail(parent, fmt.Errorf("reading project limits: %w", err))
	}
	return out, nil
}

// SetProjectLimit sets (amount > 0) or removes (0) the limit of one project of org, in currency
// ("" for the organization's), under the account's row lock; it opens the account when it has
// none. A new limit's charges of the month are seeded from the usage summary's count of the
// project in the month of now. It returns the account's currency.
func (s *Store) SetProjectLimit(parent context.Context, orgID, project string, amount money.Nanos, currency string, now time.Time) (string, error) {
	ctx, cancel := s.deadline(parent)
	defer cancel()
	if err := s.openAccounts(ctx, []ledger.NewAccount{{OrgID: orgID, Currency: currency}}); err != nil {
		return "", fail(parent, err)
	}
	tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{})
	if err != nil {
		return "", fail(parent, fmt.Errorf("beginning project limit update: %w", err))
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	acct, err := scanAccount(tx.QueryRow(ctx, `SELECT `+accountColumns+` FROM accounts WHERE kind = 'org' AND org_id = $1 FOR UPDATE`, orgID))
	if err != nil {
		return "", fail(parent, fmt.Errorf("locking the account: %w", err))
	}
	if err := acct.Resident(); err != nil {
		return "", err
	}
	if currency != "" && currency != acct.Currency {
		return "", fmt.Errorf("%w: %s account, %s requested", ledger.ErrCurrencyMismatch, acct.Currency, currency)
	}
	if err := writeProjectLimit(ctx, tx, acct, project, amount, ledger.MonthOf(now)); err != nil {
		return "", fail(parent, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return "", fail(parent, fmt.Errorf("committing the project limit: %w", err))
	}
	return acct.Currency, nil
}

func writeProjectLimit(ctx context.Context, tx pgx.Tx, acct ledger.Account, project string, amount money.Nanos, month time.Time) error {
	if amount == 0 {
		if _, err := tx.Exec(ctx, `DELETE FROM project_limits WHERE org_id = $1 AND project = $2`, acct.OrgID, project); err != nil {
			return fmt.Errorf("removing the project limit: %w", err)
		}
		return nil
	}
	var n int
	if err := tx.QueryRow(ctx, `SELECT count(*) FROM project_limits WHERE org_id = $1 AND project <> $2`, acct.OrgID, project).Scan(&n); err != nil {
		return fmt.Errorf("counting project limits: %w", err)
	}
	if n >= ledger.MaxProjectLimits {
		return fmt.Errorf("%w: at most %d projects have a limit", ledger.ErrInvalid, ledger.MaxProjectLimits)
	}
	_, err := tx.Exec(ctx, `INSERT INTO project_limits (org_id, project, monthly_limit, spend_month, month_spend)
SELECT $1, $2, $3, $4::date, least(coalesce(sum(amount), 0), 9223372036854775807)::bigint FROM usage_daily
WHERE org_id = $1 AND kind = 'project' AND item_id = $2 AND currency = $5 AND day >= $4::date
ON CONFLICT (org_id, project) DO UPDATE SET monthly_limit = EXCLUDED.monthly_limit, updated_at = now()`,
		acct.OrgID, project, int64(amount), month.Format(time.DateOnly), acct.Currency)
	if err != nil {
		return fmt.Errorf("writing the project limit: %w", err)
	}
	return nil
}

// copyProjectLimits replaces org's project limits here with those of src, in a move's
// transaction (the source's rows are as they were when the organization moved out: its writes
// were refused since).
func (s *Store) copyProjectLimits(ctx context.Context, tx pgx.Tx, src *Store, org string) error {
	ps, err := src.ProjectLimits(ctx, org)
	if err != nil {
		return err
	}
	var projects []string
	var limits, months, spends []int64
	for _, p := range ps {
		projects, limits = append(projects, p.Project), append(limits, int64(p.Amount))
		months, spends = append(months, p.Spend.Month.Unix()), append(spends, int64(p.Spend.Amount))
	}
	batch := &pgx.Batch{}
	batch.Queue(`DELETE FROM project_limits WHERE org_id = $1`, org)
	batch.Queue(`INSERT INTO project_limits (org_id, project, monthly_limit, spend_month, month_spend)
SELECT $1, p, l, 'epoch'::date + (m / 86400)::int, s FROM unnest($2::text[], $3::bigint[], $4::bigint[], $5::bigint[]) AS u(p, l, m, s)`,
		org, projects, limits, months, spends)
	if err := tx.SendBatch(ctx, batch).Close(); err != nil {
		return fmt.Errorf("copying project limits: %w", err)
	}
	return nil
}
