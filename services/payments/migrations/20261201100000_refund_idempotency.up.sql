-- Refunds are idempotent: each carries the caller's idempotency key and the parameters it was
-- asked with, so a retry returns the same refund and a reused key with other parameters is refused.
-- Refunds made before this migration get a key no caller can send again.
ALTER TABLE refunds
    ADD COLUMN idempotency_key  text,
    -- The amount asked for; 0 when the request left it empty ("everything not refunded yet").
    ADD COLUMN requested_nanos  bigint NOT NULL DEFAULT 0 CHECK (requested_nanos >= 0),
    -- While set and in the future, a request is working on this pending refund; a retry waits for
    -- it, and takes it over (resuming with the same Stripe and ledger keys) once it has lapsed.
    ADD COLUMN lease_until      timestamptz,
    -- The credits decided to be taken back, recorded before the ledger call so that a resumed
    -- refund sends the ledger the same adjustment.
    ADD COLUMN take_back_nanos  bigint CHECK (take_back_nanos >= 0);
UPDATE refunds SET idempotency_key = 'legacy:' || id::text, requested_nanos = amount_nanos;
ALTER TABLE refunds ALTER COLUMN idempotency_key SET NOT NULL;
CREATE UNIQUE INDEX refunds_idempotency_key_idx ON refunds (idempotency_key);
