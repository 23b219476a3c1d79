-- Claim → commit → call → record: a replica claims the rentals it is about to charge (a lease,
-- committed before any ledger call), calls the ledger with no transaction open, then records
-- the outcome and releases the claim in a new short transaction. The claim token fences that
-- record: a replica whose lease expired and was taken over records nothing (the ledger's
-- idempotency key rental:<instance>:<n> makes the other replica's repeat of the call safe).

-- A rental is 'starting' from StartMetering's insert until its first period is recorded: it is
-- invisible to GetRental/ListRentals, and completed (or removed when the ledger refuses the first
-- period) by the start itself, its retry, a stop or the scheduler.
ALTER TABLE rentals DROP CONSTRAINT rentals_state_check;
ALTER TABLE rentals ADD CONSTRAINT rentals_state_check
    CHECK (state IN ('starting', 'running', 'suspended_insufficient_credits', 'stopped'));

ALTER TABLE rentals
    -- The live claim: its token, the replica holding it, and the periods it charges (those
    -- started at or before claim_horizon). NULL when nobody holds the rental.
    ADD COLUMN claim_token      uuid,
    ADD COLUMN claimed_by       text,
    ADD COLUMN claim_horizon    timestamptz,
    -- End of the claim's lease; with no token, the time before which a rental whose last charge
    -- failed is not claimed again (the retry pace).
    ADD COLUMN claim_expires_at timestamptz,
    ADD CONSTRAINT rentals_claim_complete CHECK (
        (claim_token IS NULL) = (claimed_by IS NULL) AND (claim_token IS NULL) = (claim_horizon IS NULL)
        AND (claim_token IS NULL OR claim_expires_at IS NOT NULL));

