-- Setup sessions expire like Checkout Sessions: the expiry sweep (or Stripe's
-- checkout.session.expired) marks one abandoned past its expiry, and an expired one saves no card.
ALTER TABLE setup_sessions ADD COLUMN expired_at timestamptz;
CREATE INDEX setup_sessions_open_idx ON setup_sessions (mode, expires_at) WHERE completed_at IS NULL AND expired_at IS NULL;

-- One processor customer per organization (and mode): every setup session saves its card on it,
-- instead of a new Stripe Customer per setup. The saved cards' customers seed it.
CREATE TABLE processor_customers (
    org_id      text        NOT NULL,
    mode        text        NOT NULL CHECK (mode IN ('stripe', 'local')),
    customer_id text        NOT NULL,
    created_at  timestamptz NOT NULL,
    PRIMARY KEY (org_id, mode)
);
INSERT INTO processor_customers (org_id, mode, customer_id, created_at)
SELECT org_id, mode, customer_id, saved_at FROM payment_methods WHERE customer_id <> '';

-- A charge Stripe accepted without settling it (processing) waits for its payment_intent webhook;
-- should that never come, the retry worker looks the PaymentIntent up once check_after is due
-- and settles the payment from its real status (the recharge would otherwise stay in flight).
ALTER TABLE payments ADD COLUMN check_after timestamptz;
CREATE INDEX payments_check_due_idx ON payments (check_after) WHERE check_after IS NOT NULL;
