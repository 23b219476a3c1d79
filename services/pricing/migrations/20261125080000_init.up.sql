-- The price catalog: immutable price versions of models and instance types, the catalog-wide
-- version counter bumped by every change, and the audit trail of changes. Prices are bigint
-- nanos (1e-9) of the version's currency.

-- One row. Every change locks it and bumps version in the transaction that writes the change,
-- so versions are committed in order and a reader that sees version N sees every change <= N.
CREATE TABLE catalog_state (
    id         boolean     PRIMARY KEY DEFAULT true CHECK (id),
    version    bigint      NOT NULL DEFAULT 0 CHECK (version >= 0),
    updated_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO catalog_state DEFAULT VALUES;

CREATE TABLE model_price_versions (
    id              uuid        PRIMARY KEY,
    model_id        text        NOT NULL,
    display_name    text        NOT NULL,
    modality        text        NOT NULL,
    currency        text        NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    effective_from  timestamptz NOT NULL,
    catalog_version bigint      NOT NULL,
    created_at      timestamptz NOT NULL
);
CREATE INDEX model_price_versions_model ON model_price_versions (model_id, effective_from, catalog_version);

CREATE TABLE model_price_dimensions (
    version_id  uuid   NOT NULL REFERENCES model_price_versions (id),
    position    int    NOT NULL,
    unit        text   NOT NULL,
    price_nanos bigint NOT NULL CHECK (price_nanos >= 0),
    per         bigint NOT NULL CHECK (per > 0),
    PRIMARY KEY (version_id, position),
    UNIQUE (version_id, unit)
);

CREATE TABLE instance_price_versions (
    id                 uuid        PRIMARY KEY,
    instance_type_id   text        NOT NULL,
    description        text        NOT NULL,
    gpu                text        NOT NULL DEFAULT '',
    gpu_count          int         NOT NULL CHECK (gpu_count >= 0),
    vcpu               int         NOT NULL CHECK (vcpu > 0),
    memory_gib         int         NOT NULL CHECK (memory_gib > 0),
    hourly_price_nanos bigint      NOT NULL CHECK (hourly_price_nanos >= 0),
    currency           text        NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    available          boolean     NOT NULL,
    effective_from     timestamptz NOT NULL,
    catalog_version    bigint      NOT NULL,
    created_at         timestamptz NOT NULL
);
CREATE INDEX instance_price_versions_type ON instance_price_versions (instance_type_id, effective_from, catalog_version);

-- The audit trail: who changed what, when and why. The idempotency key makes a retried change
-- return the version it created; request_hash detects a key reused for another change.
CREATE TABLE price_changes (
    id              uuid        PRIMARY KEY,
    catalog_version bigint      NOT NULL,
    kind            text        NOT NULL CHECK (kind IN ('model', 'instance', 'seed')),
    subject_id      text        NOT NULL,
    version_id      uuid,
    actor           text        NOT NULL,
    reason          text        NOT NULL,
    idempotency_key text,
    request_hash    text        NOT NULL DEFAULT '',
    created_at      timestamptz NOT NULL
);
CREATE UNIQUE INDEX price_changes_idempotency_key ON price_changes (idempotency_key) WHERE idempotency_key IS NOT NULL;
CREATE INDEX price_changes_version ON price_changes (catalog_version);

-- History is immutable: a price that was in force must stay explainable.
CREATE FUNCTION forbid_history_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'price history is immutable: % on %', TG_OP, TG_TABLE_NAME;
END
$$;
CREATE TRIGGER model_price_versions_immutable BEFORE UPDATE OR DELETE ON model_price_versions
    FOR EACH ROW EXECUTE FUNCTION forbid_history_change();
CREATE TRIGGER model_price_versions_no_truncate BEFORE TRUNCATE ON model_price_versions
    FOR EACH STATEMENT EXECUTE FUNCTION forbid_history_change();
CREATE TRIGGER model_price_dimensions_immutable BEFORE UPDATE OR DELETE ON model_price_dimensions
    FOR EACH ROW EXECUTE FUNCTION forbid_history_change();
CREATE TRIGGER model_price_dimensions_no_truncate BEFORE TRUNCATE ON model_price_dimensions
    FOR EACH STATEMENT EXECUTE FUNCTION forbid_history_change();
CREATE TRIGGER instance_price_versions_immutable BEFORE UPDATE OR DELETE ON instance_price_versions
    FOR EACH ROW EXECUTE FUNCTION forbid_history_change();
CREATE TRIGGER instance_price_versions_no_truncate BEFORE TRUNCATE ON instance_price_versions
    FOR EACH STATEMENT EXECUTE FUNCTION forbid_history_change();
CREATE TRIGGER price_changes_immutable BEFORE UPDATE OR DELETE ON price_changes
    FOR EACH ROW EXECUTE FUNCTION forbid_history_change();
CREATE TRIGGER price_changes_no_truncate BEFORE TRUNCATE ON price_changes
    FOR EACH STATEMENT EXECUTE FUNCTION forbid_history_change();
