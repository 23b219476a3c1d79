package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

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

// queueReadProjectLimits reads the project limits of orgs, whose accounts queueLockAccounts
// locks (queued after it, so it reads under their row locks, which every writer of
// project_limits holds, in a snapshot taken after they were granted), into their Projects.
func queueReadProjectLimits(batch *pgx.Batch, orgs []string, into map[string]*ledger.Account) {
	batch.Queue(`SELECT `+projectLimitColumns+` FROM project_limits WHERE org_id = ANY($1::text[])`, orgs).Query(func(rows pgx.Rows) error {
		return scanProjectLimits(rows, into)
	})
}

func scanProjectLimits(rows pgx.Rows, into map[string]*ledger.Account) error {
	for rows.Next() {
		org, p, err := scanProjectLimit(rows)
		if err != nil {
			return fmt.Errorf("scanning project limit: %w", err)
		}
		if a, ok := into[org]; ok {
			if a.Projects == nil {
				a.Projects = make(map[string]*ledger.ProjectLimit, a.ProjectLimitCount)
			}
			a.Projects[p.Project] = &p
		}
	}
	return rows.Err()
}

// readProjectLimits reads, under the locks already held, the project limits of the locked
// accounts that have some (project_limit_count, read with the lock) and are not among read,
// which were read already: a batch's first of an organization since its limits were set on
// another replica, or one naming the organization only through a hold, pays this round trip.
func readLateProjectLimits(ctx context.Context, q querier, read []string, accts map[string]*ledger.Account) error {
	var late []string
	for org, a := range accts {
		if a.ProjectLimitCount > 0 && !slices.Contains(read, org) {
			late = append(late, org)
		}
	}
	if len(late) == 0 {
		return nil
	}
	rows, err := q.Query(ctx, `SELECT `+projectLimitColumns+` FROM project_limits WHERE org_id = ANY($1::text[])`, late)
	if err != nil {
		return fmt.Errorf("reading project limits: %w", err)
	}
	defer rows.Close()
	if err := scanProjectLimits(rows, accts); err != nil {
		return fmt.Errorf("reading project limits: %w", err)
	}
	return nil
}

// limitedOrgs returns the organizations of orgs last seen with project limits.
func (s *Store) limitedOrgs(orgs []string) []string {
	var out []string
	for _, org := range orgs {
		if _, ok := s.projectOrgs.Load(org); ok {
			out = append(out, org)
		}
	}
	return out
}

// rememberProjectLimits records whether a's organization has project limits, as read under its
// lock.
func (s *Store) rememberProjectLimits(a ledger.Account) {
	if a.ProjectLimitCount > 0 {
		s.projectOrgs.Store(a.OrgID, struct{}{})
	} else if _, ok := s.projectOrgs.Load(a.OrgID); ok {
		s.projectOrgs.Delete(a.OrgID)
	}
}

// projectLimitJSON is a project limit as AccountsForCache reads it (json_build_object).
type projectLimitJSON struct {
	Project string `json:"p"`
	Limit   int64  `json:"l"`
	Month   int64  `json:"m"`
	Spend   int64  `json:"s"`
}

// decodeProjectLimits reads the json_agg of projectLimitJSON (nil when NULL: none).
func decodeProjectLimits(raw []byte) (map[string]*ledger.ProjectLimit, error) {
	if raw == nil {
		return nil, nil
	}
	var ps []projectLimitJSON
	if err := json.Unmarshal(raw, &ps); err != nil {
		return nil, fmt.Errorf("decoding project limits: %w", err)
	}
	out := make(map[string]*ledger.ProjectLimit, len(ps))
	for _, p := range ps {
		out[p.Project] = &ledger.ProjectLimit{Project: p.Project, Amount: money.Nanos(p.Limit),
			Spend: ledger.Spend{Month: time.Unix(p.Month, 0).UTC(), Amount: money.Nanos(p.Spend)}}
	}
	return out, nil
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
// project in the month of now. The account's project_limit_count and version change with it, so
// a balance cache entry of the account before the change is older than the one returned: the
// account as committed, with all its project limits, and the cache epoch read in the same
// transaction before the lock (see freshness.go in app).
//
// A lost answer to the COMMIT is ledger.ErrOutcomeUnknown (and ledger.ErrUnavailable).
func (s *Store) SetProjectLimit(parent context.Context, orgID, project string, amount money.Nanos, currency string, now time.Time) (acct ledger.Account, epoch int64, err error) {
	ctx, cancel := s.deadline(parent)
	defer cancel()
	if err := s.openAccounts(ctx, []ledger.NewAccount{{OrgID: orgID, Currency: currency}}); err != nil {
		return ledger.Account{}, 0, fail(parent, err)
	}
	tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{})
	if err != nil {
		return ledger.Account{}, 0, fail(parent, fmt.Errorf("beginning project limit update: %w", err))
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
		return ledger.Account{}, 0, err
	}
	if currency != "" && currency != acct.Currency {
		return ledger.Account{}, 0, fmt.Errorf("%w: %s account, %s requested", ledger.ErrCurrencyMismatch, acct.Currency, currency)
	}
	if err := writeProjectLimit(ctx, tx, acct, project, amount, ledger.MonthOf(now)); err != nil {
		return ledger.Account{}, 0, fail(parent, err)
	}
	if err := tx.QueryRow(ctx, `UPDATE accounts SET version = version + 1,
    project_limit_count = (SELECT count(*) FROM project_limits WHERE org_id = $2) WHERE id = $1 RETURNING version, project_limit_count`,
		acct.ID, acct.OrgID).Scan(&acct.Version, &acct.ProjectLimitCount); err != nil {
		return ledger.Account{}, 0, fail(parent, fmt.Errorf("counting project limits: %w", err))
	}
	acct.Projects = nil
	if err := readLateProjectLimits(ctx, tx, nil, map[string]*ledger.Account{acct.OrgID: &acct}); err != nil {
		return ledger.Account{}, 0, fail(parent, err)
	}
	if err := tx.Commit(ctx); err != nil {
		err = fail(parent, fmt.Errorf("committing the project limit: %w", err))
		if errors.Is(err, ledger.ErrUnavailable) && !pgconn.SafeToRetry(err) {
			err = fmt.Errorf("%w: %w", ledger.ErrOutcomeUnknown, err)
		}
		return ledger.Account{}, 0, err
	}
	s.rememberProjectLimits(acct)
	return acct, epoch, nil
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
	batch.Queue(`UPDATE accounts SET project_limit_count = $2 WHERE kind = 'org' AND org_id = $1`, org, len(ps))
	if err := tx.SendBatch(ctx, batch).Close(); err != nil {
		return fmt.Errorf("copying project limits: %w", err)
	}
	return nil
}
