-- Notifications: member settings with the low-credit alert state, the latest balance of each
-- organization, the ledger event cursor and the email outbox (which is also the delivery log).
-- Money is bigint nanos with its currency.

CREATE TABLE member_settings (
    org_id                     text        NOT NULL,
    member_id                  text        NOT NULL,
    is_admin                   boolean     NOT NULL,
    -- Email of the member's token, refreshed on every call; email_override wins when set.
    account_email              text        NOT NULL DEFAULT '',
    email_override             text        NOT NULL DEFAULT '',
    low_credit_enabled         boolean     NOT NULL DEFAULT false,
    threshold_nanos            bigint      NOT NULL DEFAULT 0,
    -- '' when no threshold was ever set.
    threshold_currency         text        NOT NULL DEFAULT '',
    alert_state                text        NOT NULL DEFAULT 'armed' CHECK (alert_state IN ('armed', 'fired')),
    -- Alerts fired so far; part of each alert's idempotency key.
    alert_generation           bigint      NOT NULL DEFAULT 0,
    credits_expiring_enabled   boolean     NOT NULL,
    credits_expired_enabled    boolean     NOT NULL,
    payment_succeeded_enabled  boolean     NOT NULL,
    rental_suspended_enabled   boolean     NOT NULL,
    created_at                 timestamptz NOT NULL DEFAULT now(),
    updated_at                 timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (org_id, member_id)
);

-- Latest balance of each organization, from the ledger's events (last_seq > 0) or GetBalance
-- (last_seq = 0). reminded_expires_at is the expiry date whose 7-day reminder was queued.
CREATE TABLE org_balances (
    org_id               text        PRIMARY KEY,
    currency             text        NOT NULL,
    balance              bigint      NOT NULL,
    available            bigint      NOT NULL,
    expires_at           timestamptz,
    last_seq             bigint      NOT NULL,
    reminded_expires_at  timestamptz,
    updated_at           timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX org_balances_expiring ON org_balances (expires_at) WHERE expires_at IS NOT NULL;

-- Position of each consumer in an event stream; advanced in the transaction that applies the events.
CREATE TABLE event_cursors (
    name        text        PRIMARY KEY,
    seq         bigint      NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now()
);

INSERT INTO event_cursors (name, seq) VALUES ('ledger', 0);

-- Outbox: one row per email and recipient, unique per idempotency key.
CREATE TABLE emails (
    id               uuid        PRIMARY KEY,
    idempotency_key  text        NOT NULL UNIQUE,
    kind             text        NOT NULL,
    org_id           text        NOT NULL,
    member_id        text        NOT NULL,
    to_address       text        NOT NULL,
    data             jsonb       NOT NULL,
    ledger_seq       bigint      NOT NULL DEFAULT 0,
    status           text        NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent', 'failed')),
    attempts         integer     NOT NULL DEFAULT 0,
    last_error       text        NOT NULL DEFAULT '',
    message_id       text        NOT NULL DEFAULT '',
    created_at       timestamptz NOT NULL DEFAULT now(),
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    sent_at          timestamptz
);

CREATE INDEX emails_due ON emails (next_attempt_at) WHERE status = 'pending';
CREATE INDEX emails_newest ON emails (created_at DESC, id DESC);
CREATE INDEX emails_org_newest ON emails (org_id, created_at DESC, id DESC);
