-- Usage-priced debits keep the price version and the per-unit lines they were priced with.
ALTER TABLE transactions ADD COLUMN pricing jsonb;
