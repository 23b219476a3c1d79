-- The ledger: accounts, balanced transactions of postings, holds, idempotency keys and the
-- transactional outbox of balance events. All amounts are bigint nanos of the account currency.

CREATE TABLE accounts (
    id          bigserial PRIMARY KEY,
    -- "org:<org_id>" or "platform:<kind>:<currency>:<shard>".
    name        text        NOT NULL UNIQUE,
    kind        text        NOT NULL CHECK (kind IN ('org', 'revenue', 'expired', 'payment_clearing', 'grants', 'adjustments')),
    org_id      text,
    currency    text        NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    balance     bigint      NOT NULL DEFAULT 0,
    held        bigint      NOT NULL DEFAULT 0 CHECK (held >= 0),
    expires_at  timestamptz,
    version     bigint      NOT NULL DEFAULT 0,
    created_at  timestamptz NOT NULL DEFAULT now(),
    CHECK ((kind = 'org') = (org_id IS NOT NULL))
);
CREATE UNIQUE INDEX accounts_org_id ON accounts (org_id) WHERE kind = 'org';
CREATE INDEX accounts_expiry_due ON accounts (expires_at) WHERE kind = 'org' AND expires_at IS NOT NULL;

CREATE TABLE transactions (
    id              uuid PRIMARY KEY,
    seq             bigserial   NOT NULL UNIQUE,
    org_id          text        NOT NULL,
    kind            text        NOT NULL CHECK (kind IN ('credit', 'debit', 'adjustment', 'expiry', 'capture')),
    -- Signed change of the organization's balance.
    amount          bigint      NOT NULL,
    balance_after   bigint      NOT NULL,
    currency        text        NOT NULL,
    description     text        NOT NULL DEFAULT '',
    metadata        jsonb       NOT NULL DEFAULT '{}',
    reason          text        NOT NULL DEFAULT '',
    reference       text        NOT NULL DEFAULT '',
    idempotency_key text        NOT NULL,
    actor           text        NOT NULL DEFAULT '',
    hold_id         uuid,
    created_at      timestamptz NOT NULL
);
CREATE INDEX transactions_org_newest ON transactions (org_id, seq DESC);

CREATE TABLE postings (
    transaction_id uuid   NOT NULL REFERENCES transactions (id),
    account_id     bigint NOT NULL REFERENCES accounts (id),
    amount         bigint NOT NULL CHECK (amount <> 0),
    PRIMARY KEY (transaction_id, account_id)
);
CREATE INDEX postings_account ON postings (account_id);

-- Every transaction's postings are inserted by one statement; this checks they sum to zero.
CREATE FUNCTION check_postings_balanced() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM new_postings GROUP BY transaction_id HAVING sum(amount) <> 0) THEN
        RAISE EXCEPTION 'unbalanced ledger transaction' USING ERRCODE = 'check_violation';
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER postings_balanced AFTER INSERT ON postings
    REFERENCING NEW TABLE AS new_postings
    FOR EACH STATEMENT EXECUTE FUNCTION check_postings_balanced();

CREATE TABLE holds (
    id             uuid PRIMARY KEY,
    org_id         text        NOT NULL,
    amount         bigint      NOT NULL CHECK (amount > 0),
    currency       text        NOT NULL,
    status         text        NOT NULL CHECK (status IN ('active', 'captured', 'released', 'expired')),
    description    text        NOT NULL DEFAULT '',
    expires_at     timestamptz NOT NULL,
    created_at     timestamptz NOT NULL,
    ended_at       timestamptz,
    captured       bigint,
    transaction_id uuid
);
CREATE INDEX holds_active_due ON holds (expires_at) WHERE status = 'active';

-- Idempotency keys are scoped per organization; the same key with other parameters is refused.
CREATE TABLE idempotency_keys (
    org_id         text        NOT NULL,
    key            text        NOT NULL,
    operation      text        NOT NULL,
    request_hash   bytea       NOT NULL,
    transaction_id uuid,
    hold_id        uuid,
    created_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (org_id, key)
);

-- Transactional outbox. Sequence numbers are taken from event_sequence inside the writing
-- transaction, whose row lock is held until commit, so sequence order is commit order.
CREATE TABLE events (
    seq            bigint PRIMARY KEY,
    org_id         text        NOT NULL,
    kind           text        NOT NULL,
    transaction_id uuid,
    hold_id        uuid,
    amount         bigint      NOT NULL,
    balance        bigint      NOT NULL,
    available      bigint      NOT NULL,
    currency       text        NOT NULL,
    expires_at     timestamptz,
    occurred_at    timestamptz NOT NULL
);
CREATE INDEX events_org ON events (org_id, seq);

CREATE TABLE event_sequence (
    id   int PRIMARY KEY CHECK (id = 1),
    last bigint NOT NULL
);
INSERT INTO event_sequence (id, last) VALUES (1, 0);
