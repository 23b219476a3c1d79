-- Payments: one row per top-up (Checkout Session).
CREATE TABLE payments (
    id                    uuid PRIMARY KEY,
    org_id                text        NOT NULL,
    mode                  text        NOT NULL CHECK (mode IN ('stripe', 'local')),
    amount_nanos          bigint      NOT NULL CHECK (amount_nanos > 0),
    amount_minor          bigint      NOT NULL CHECK (amount_minor > 0),
    currency              text        NOT NULL,
    status                text        NOT NULL CHECK (status IN ('pending', 'succeeded', 'failed', 'expired', 'refunded', 'disputed')),
    member_id             text        NOT NULL,
    member_name           text        NOT NULL DEFAULT '',
    member_email          text        NOT NULL DEFAULT '',
    checkout_session_id   text UNIQUE,
    checkout_url          text        NOT NULL DEFAULT '',
    payment_intent_id     text,
    payment_method        text        NOT NULL DEFAULT '',
    awaiting_async        boolean     NOT NULL DEFAULT false,
    local_paid_at         timestamptz,
    credited_at           timestamptz,
    ledger_transaction_id text,
    paid_at               timestamptz,
    refunded_nanos        bigint      NOT NULL DEFAULT 0 CHECK (refunded_nanos >= 0 AND refunded_nanos <= amount_nanos),
    expires_at            timestamptz,
    created_at            timestamptz NOT NULL,
    updated_at            timestamptz NOT NULL,
    -- Credits are granted at most once and never taken back by a status change.
    CHECK ((credited_at IS NULL) = (ledger_transaction_id IS NULL))
);
CREATE INDEX payments_org_idx ON payments (org_id, id DESC);
CREATE INDEX payments_intent_idx ON payments (payment_intent_id) WHERE payment_intent_id IS NOT NULL;
CREATE INDEX payments_local_paid_idx ON payments (local_paid_at) WHERE local_paid_at IS NOT NULL AND credited_at IS NULL;

-- Every Stripe event processed, so that each is processed once.
CREATE TABLE stripe_events (
    id                  text PRIMARY KEY,
    type                text        NOT NULL,
    payment_id          uuid REFERENCES payments (id),
    outcome             text        NOT NULL,
    received_at         timestamptz NOT NULL DEFAULT now()
);

-- Gapless document numbers: one counter row per series and year, incremented in the transaction
-- that issues the document, so a rolled-back issue also rolls back its number.
CREATE TABLE document_counters (
    series text   NOT NULL,
    year   int    NOT NULL,
    last   bigint NOT NULL CHECK (last > 0),
    PRIMARY KEY (series, year)
);

CREATE TABLE billing_profiles (
    org_id     text PRIMARY KEY,
    legal_name text        NOT NULL DEFAULT '',
    address    text        NOT NULL DEFAULT '',
    tax_id     text        NOT NULL DEFAULT '',
    email      text        NOT NULL DEFAULT '',
    updated_at timestamptz NOT NULL,
    updated_by text        NOT NULL DEFAULT ''
);

CREATE TABLE refunds (
    id                          uuid PRIMARY KEY,
    payment_id                  uuid        NOT NULL REFERENCES payments (id),
    amount_nanos                bigint      NOT NULL CHECK (amount_nanos > 0),
    amount_minor                bigint      NOT NULL CHECK (amount_minor > 0),
    status                      text        NOT NULL CHECK (status IN ('pending', 'succeeded', 'failed')),
    reason                      text        NOT NULL DEFAULT '',
    requested_by                text        NOT NULL DEFAULT '',
    stripe_refund_id            text,
    credits_taken_back_nanos    bigint      NOT NULL DEFAULT 0,
    credits_not_recovered_nanos bigint      NOT NULL DEFAULT 0,
    created_at                  timestamptz NOT NULL,
    completed_at                timestamptz
);
CREATE INDEX refunds_payment_idx ON refunds (payment_id);

-- Issued invoices and credit notes. Immutable: the trigger below refuses updates and deletes.
CREATE TABLE documents (
    id         uuid PRIMARY KEY,
    kind       text        NOT NULL CHECK (kind IN ('invoice', 'credit_note')),
    series     text        NOT NULL,
    year       int         NOT NULL,
    seq        bigint      NOT NULL,
    number     text        NOT NULL UNIQUE,
    payment_id uuid        NOT NULL REFERENCES payments (id),
    refund_id  uuid REFERENCES refunds (id),
    org_id     text        NOT NULL,
    issued_at  timestamptz NOT NULL,
    pdf        bytea       NOT NULL,
    pdf_sha256 bytea       NOT NULL,
    UNIQUE (series, year, seq),
    CHECK ((kind = 'credit_note') = (refund_id IS NOT NULL))
);
CREATE UNIQUE INDEX documents_one_invoice_per_payment ON documents (payment_id) WHERE kind = 'invoice';
CREATE UNIQUE INDEX documents_one_note_per_refund ON documents (refund_id) WHERE refund_id IS NOT NULL;

CREATE FUNCTION documents_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'issued documents are immutable';
END;
$$;
CREATE TRIGGER documents_immutable BEFORE UPDATE OR DELETE ON documents
    FOR EACH ROW EXECUTE FUNCTION documents_immutable();

-- What needs an ops decision.
CREATE TABLE review_items (
    id              uuid PRIMARY KEY,
    payment_id      uuid REFERENCES payments (id),
    org_id          text        NOT NULL DEFAULT '',
    kind            text        NOT NULL,
    detail          text        NOT NULL DEFAULT '',
    stripe_event_id text        NOT NULL DEFAULT '',
    created_at      timestamptz NOT NULL,
    resolved_at     timestamptz,
    resolved_by     text        NOT NULL DEFAULT '',
    resolution      text        NOT NULL DEFAULT ''
);
-- One open item per payment and kind: reconciliation retrying a refused credit does not pile up.
CREATE UNIQUE INDEX review_items_open_idx ON review_items (payment_id, kind) WHERE resolved_at IS NULL;
CREATE INDEX review_items_list_idx ON review_items (id DESC);
