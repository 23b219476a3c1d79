-- Spend limits (issue 18): an organization's monthly spend limit, set by its admins, and its
-- charges of the current UTC calendar month, kept on its account row and written by the batch in
-- the same UPDATE as its balance (no extra row, index entry or statement per debit). Authorize
-- and require_funds debits refuse once the month's spending reaches the limit.
--
--   spend_limit          nanos of the account's currency per UTC month; 0 = no limit.
--   spend_alert_percent  1..100 of the limit where the spend alert fires (an outbox event,
--                        kind 'spend_alert'); 0 = no alert.
--   spend_month          the UTC month month_spend counts (its first day); NULL before a charge.
--   month_spend          the debits and captures of spend_month (saturating at the bigint maximum).
--   spend_alerted        the alert fired for spend_month at the current limit.
ALTER TABLE accounts
    ADD COLUMN spend_limit         bigint   NOT NULL DEFAULT 0 CHECK (spend_limit >= 0),
    ADD COLUMN spend_alert_percent smallint NOT NULL DEFAULT 0 CHECK (spend_alert_percent BETWEEN 0 AND 100),
    ADD COLUMN spend_month         date     CHECK (spend_month = date_trunc('month', spend_month)::date),
    ADD COLUMN month_spend         bigint   NOT NULL DEFAULT 0 CHECK (month_spend >= 0),
    ADD COLUMN spend_alerted       boolean  NOT NULL DEFAULT false;

-- The limit whose alert a 'spend_alert' event reports (its amount is the month's spending).
ALTER TABLE events ADD COLUMN spend_limit bigint;

-- Backfill: the charges already recorded this month count against a limit set later. Ledger
-- replicas of the previous version do not maintain month_spend; a rolling upgrade undercounts
-- what they commit meanwhile.
UPDATE accounts a SET spend_month = s.month, month_spend = least(s.total, 9223372036854775807)::bigint
FROM (
    SELECT t.org_id, date_trunc('month', now() AT TIME ZONE 'UTC')::date AS month, -sum(t.amount) AS total
    FROM transactions t
    WHERE t.kind IN ('debit', 'capture') AND t.created_at >= date_trunc('month', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'
    GROUP BY t.org_id
) s
WHERE a.kind = 'org' AND a.org_id = s.org_id AND s.total > 0;

-- Usage per project: debits and captures whose metadata names a "project" are counted a second
-- time under kind 'project' (the usage summary keeps them apart from the days' totals). Events
-- the usage follower counted before this migration are not attributed.
ALTER TABLE usage_daily DROP CONSTRAINT usage_daily_kind_check;
ALTER TABLE usage_daily ADD CONSTRAINT usage_daily_kind_check CHECK (kind IN ('model', 'instance', 'other', 'project'));
