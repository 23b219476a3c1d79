-- Auto-recharge: a saved card per organization (Checkout in setup mode), one rule per
-- organization, and automatic payments charged off-session with the saved card.

-- Setup sessions: a Checkout Session in setup mode (or the test-mode page) an admin opened to save
-- a card. The test-mode page records the test card chosen in local_method.
CREATE TABLE setup_sessions (
    id           text PRIMARY KEY,
    org_id       text        NOT NULL,
    mode         text        NOT NULL CHECK (mode IN ('stripe', 'local')),
    member_id    text        NOT NULL,
    member_name  text        NOT NULL DEFAULT '',
    member_email text        NOT NULL DEFAULT '',
    url          text        NOT NULL DEFAULT '',
    local_method text        NOT NULL DEFAULT '',
    completed_at timestamptz,
    expires_at   timestamptz NOT NULL,
    created_at   timestamptz NOT NULL
);

-- The organization's saved card: at most one, replaced by the next setup that completes.
CREATE TABLE payment_methods (
    org_id            text PRIMARY KEY,
    mode              text        NOT NULL CHECK (mode IN ('stripe', 'local')),
    customer_id       text        NOT NULL DEFAULT '',
    payment_method_id text        NOT NULL,
    brand             text        NOT NULL DEFAULT '',
    last4             text        NOT NULL DEFAULT '',
    exp_month         int         NOT NULL DEFAULT 0,
    exp_year          int         NOT NULL DEFAULT 0,
    setup_session_id  text        NOT NULL,
    member_id         text        NOT NULL,
    member_name       text        NOT NULL DEFAULT '',
    member_email      text        NOT NULL DEFAULT '',
    saved_at          timestamptz NOT NULL
);

-- One rule per organization. Exactly once per crossing: a recharge is claimed by one conditional
-- update of this row (armed -> fired, no recharge in flight, an event newer than last_seq), as the
-- low-credit alert is; it re-arms when the available balance is back at or above the threshold.
CREATE TABLE recharge_rules (
    org_id               text PRIMARY KEY,
    enabled              boolean     NOT NULL DEFAULT false,
    currency             text        NOT NULL,
    threshold_nanos      bigint      NOT NULL DEFAULT 0 CHECK (threshold_nanos >= 0),
    amount_nanos         bigint      NOT NULL DEFAULT 0 CHECK (amount_nanos >= 0),
    target_nanos         bigint      NOT NULL DEFAULT 0 CHECK (target_nanos >= 0),
    monthly_cap_nanos    bigint      NOT NULL DEFAULT 0 CHECK (monthly_cap_nanos >= 0),
    state                text        NOT NULL DEFAULT 'armed' CHECK (state IN ('armed', 'fired')),
    -- The ledger event sequence last applied: older events (another replica, a replay after a
    -- restart) change nothing.
    last_seq             bigint      NOT NULL DEFAULT 0,
    in_flight            uuid,
    consecutive_failures int         NOT NULL DEFAULT 0,
    disabled_reason      text        NOT NULL DEFAULT '',
    disabled_at          timestamptz,
    updated_by           text        NOT NULL DEFAULT '',
    updated_by_email     text        NOT NULL DEFAULT '',
    updated_at           timestamptz NOT NULL
);

-- Where the recharge trigger's watch of the ledger events resumes after a restart.
CREATE TABLE recharge_cursor (
    id  int PRIMARY KEY CHECK (id = 1),
    seq bigint NOT NULL
);

ALTER TABLE payments
    ADD COLUMN automatic              boolean NOT NULL DEFAULT false,
    -- An automatic payment is charged with the Stripe idempotency key "recharge:<id>"; while
    -- charge_after is set and due, the recharge worker (re)sends that charge: a replica that died
    -- mid-recharge is resumed, never doubled.
    ADD COLUMN charge_after           timestamptz,
    ADD COLUMN failure_reason         text    NOT NULL DEFAULT '',
    ADD COLUMN failure_message        text    NOT NULL DEFAULT '',
    -- A failed automatic payment's email to the admins is due until notified_at is set.
    ADD COLUMN notify_after           timestamptz,
    ADD COLUMN failures_in_row        int     NOT NULL DEFAULT 0,
    ADD COLUMN disabled_rule          boolean NOT NULL DEFAULT false;
CREATE INDEX payments_charge_due_idx ON payments (charge_after) WHERE charge_after IS NOT NULL;
CREATE INDEX payments_notify_due_idx ON payments (notify_after) WHERE notify_after IS NOT NULL;
CREATE INDEX payments_automatic_month_idx ON payments (org_id, created_at) WHERE automatic;
