-- event_seq_base names event_xid_probe without a schema: it resolved through the caller's
-- search_path, so a session outside the ledger's schema (ops' psql, usage-bench) calling
-- ledger.event_seq_base failed with "relation event_xid_probe does not exist". The function now
-- carries the schema it was created in.
ALTER FUNCTION event_seq_base(bigint) SET search_path FROM CURRENT;
