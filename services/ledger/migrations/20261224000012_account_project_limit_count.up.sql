-- How many project limits an organization has (project_limits rows), kept on its account row by
-- every writer of project_limits, in the same transaction and under the row's lock. The batch
-- reads it with the lock it takes anyway and reads project_limits only for organizations that
-- have some, so a batch of organizations without project limits runs no statement for them.
ALTER TABLE accounts
    ADD COLUMN project_limit_count integer NOT NULL DEFAULT 0 CHECK (project_limit_count >= 0);

UPDATE accounts a SET project_limit_count = c.n
FROM (SELECT org_id, count(*)::integer AS n FROM project_limits GROUP BY org_id) c
WHERE a.kind = 'org' AND a.org_id = c.org_id;
