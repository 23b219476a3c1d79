-- No money left in limbo: a paid payment is marked due for fulfilment before the ledger is called,
-- and a pending refund carries when it may be retried, so that the retry worker finishes both
-- whatever happens to the request that started them (a dependency outage, a crash, Stripe giving
-- up on a webhook).
ALTER TABLE payments
    -- While set and the payment is not credited, its credit is due: the retry worker claims it at
    -- this time (FOR UPDATE SKIP LOCKED, moving it forward by a lease) and credits it with the key
    -- "checkout:<session id>". Cleared once credited or definitively refused.
    ADD COLUMN fulfil_after    timestamptz,
    -- Failed fulfilment attempts (retryable: the ledger unavailable, our token refused, ...).
    ADD COLUMN fulfil_attempts int  NOT NULL DEFAULT 0,
    ADD COLUMN fulfil_error    text NOT NULL DEFAULT '';
CREATE INDEX payments_fulfil_due_idx ON payments (fulfil_after) WHERE fulfil_after IS NOT NULL AND credited_at IS NULL;

ALTER TABLE refunds
    -- The retry worker carries a pending refund on from this time, once nobody holds its lease.
    ADD COLUMN retry_at       timestamptz NOT NULL DEFAULT now(),
    ADD COLUMN attempts       int         NOT NULL DEFAULT 0,
    ADD COLUMN last_error     text        NOT NULL DEFAULT '',
    -- Stripe's status of stripe_refund_id as last seen: pending and requires_action are in flight,
    -- succeeded completes the refund, failed and canceled fail it.
    ADD COLUMN stripe_status  text        NOT NULL DEFAULT '';
UPDATE refunds SET stripe_status = 'succeeded' WHERE status = 'succeeded' AND stripe_refund_id IS NOT NULL;
CREATE INDEX refunds_retry_idx ON refunds (retry_at) WHERE status = 'pending';
