-- Per-project spend limits (issue 18): an organization's admins may cap the monthly charges of a
-- project, the "project" metadata of its debits and captures, besides the organization's limit
-- on its account row. A project's charges are counted here by the batch that books them, in the
-- same transaction and under the account's row lock (every writer of these rows holds it), from
-- when its limit was set (seeded with the usage summary's count of the month so far).
--
--   monthly_limit  nanos of the account's currency per UTC month (> 0; removing the limit
--                  deletes the row).
--   spend_month    the UTC month month_spend counts (its first day).
--   month_spend    the project's debits and captures of spend_month (saturating).
CREATE TABLE project_limits (
    org_id         text        NOT NULL,
    project        text        NOT NULL CHECK (project <> '' AND octet_length(project) <= 128),
    monthly_limit  bigint      NOT NULL CHECK (monthly_limit > 0),
    spend_month    date        NOT NULL CHECK (spend_month = date_trunc('month', spend_month)::date),
    month_spend    bigint      NOT NULL DEFAULT 0 CHECK (month_spend >= 0),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (org_id, project)
);
