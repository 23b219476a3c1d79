-- Usage-priced debits keep the price version and the per-unit lines they were priced with.
-- json, not jsonb: stored as written, never queried inside, cheaper to insert on the per-call path.
ALTER TABLE transactions ADD COLUMN pricing json;
