-- Instances metering: rentals with their locked price, the periods charged through the ledger,
-- the transactional outbox of rental events and the outbox of suspension notices.

CREATE TABLE rentals (
    id               bigserial PRIMARY KEY,
    instance_id      text        NOT NULL UNIQUE,
    org_id           text        NOT NULL,
    instance_type    text        NOT NULL,
    price_version_id text        NOT NULL,
    -- Locked at start, in nanos of currency.
    hourly_price     bigint      NOT NULL CHECK (hourly_price >= 0),
    currency         text        NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    -- The billing period of this rental, kept so a configuration change never renumbers periods.
    period_ns        bigint      NOT NULL CHECK (period_ns > 0),
    period_price     bigint      NOT NULL CHECK (period_price >= 0),
    idempotency_key  text        NOT NULL,
    state            text        NOT NULL CHECK (state IN ('running', 'suspended_insufficient_credits', 'stopped')),
    started_at       timestamptz NOT NULL,
    stopped_at       timestamptz,
    suspended_at     timestamptz,
    periods_charged  bigint      NOT NULL DEFAULT 0 CHECK (periods_charged >= 0),
    total_charged    bigint      NOT NULL DEFAULT 0,
    -- Start of the next period to charge (started_at + periods_charged × period); NULL when
    -- nothing more will be charged. The scheduler claims rows with next_charge_at <= now.
    next_charge_at   timestamptz,
    CHECK ((state = 'stopped') = (stopped_at IS NOT NULL)),
    CHECK (state <> 'suspended_insufficient_credits' OR suspended_at IS NOT NULL)
);
CREATE INDEX rentals_due ON rentals (next_charge_at) WHERE next_charge_at IS NOT NULL;
CREATE INDEX rentals_org ON rentals (org_id, id DESC);

-- One row per charged period: the primary key refuses a period recorded twice.
CREATE TABLE charges (
    instance_id    text        NOT NULL,
    period         bigint      NOT NULL CHECK (period >= 0),
    amount         bigint      NOT NULL CHECK (amount >= 0),
    transaction_id text        NOT NULL DEFAULT '',
    grace          boolean     NOT NULL DEFAULT false,
    charged_at     timestamptz NOT NULL,
    PRIMARY KEY (instance_id, period)
);

-- Transactional outbox, in two steps so that writers never wait on one another: every writing
-- transaction inserts its events into pending_events; one sequencer at a time (an advisory lock)
-- moves committed pending events, in id order, into events with the next sequence numbers. A
-- rental's transactions are serialized by its row lock, so its events keep their order; events
-- only ever get appended with growing sequence numbers, so a reader resuming after a sequence
-- misses nothing.
CREATE TABLE pending_events (
    id             bigserial PRIMARY KEY,
    kind           text        NOT NULL,
    instance_id    text        NOT NULL,
    org_id         text        NOT NULL,
    instance_type  text        NOT NULL,
    period         bigint      NOT NULL DEFAULT 0,
    amount         bigint      NOT NULL DEFAULT 0,
    currency       text        NOT NULL,
    transaction_id text        NOT NULL DEFAULT '',
    occurred_at    timestamptz NOT NULL
);

CREATE TABLE events (
    seq            bigint PRIMARY KEY,
    kind           text        NOT NULL CHECK (kind IN ('started', 'period_charged', 'suspended_insufficient_credits', 'stopped')),
    instance_id    text        NOT NULL,
    org_id         text        NOT NULL,
    instance_type  text        NOT NULL,
    period         bigint      NOT NULL DEFAULT 0,
    amount         bigint      NOT NULL DEFAULT 0,
    currency       text        NOT NULL,
    transaction_id text        NOT NULL DEFAULT '',
    occurred_at    timestamptz NOT NULL
);

CREATE TABLE event_sequence (
    id   int PRIMARY KEY CHECK (id = 1),
    last bigint NOT NULL
);
INSERT INTO event_sequence (id, last) VALUES (1, 0);

-- Suspension notices for the notifications service, retried until delivered.
CREATE TABLE suspension_notices (
    instance_id     text PRIMARY KEY,
    org_id          text        NOT NULL,
    reason          text        NOT NULL,
    created_at      timestamptz NOT NULL,
    attempts        int         NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL,
    sent_at         timestamptz
);
CREATE INDEX suspension_notices_due ON suspension_notices (next_attempt_at) WHERE sent_at IS NULL;
