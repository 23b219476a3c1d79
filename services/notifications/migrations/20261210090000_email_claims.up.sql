-- Claim → commit → call → record: a sender claims an email (a lease: next_attempt_at pushed to
-- the lease's end, its token and name, attempts counted), commits, talks SMTP with no
-- transaction open, then records the attempt in a new short transaction. A sender that dies
-- mid-send leaves the email to be claimed again once the lease ends (sent again with the same
-- Message-ID: at least once); the token keeps its late failure record from overwriting a newer
-- claim's outcome.
ALTER TABLE emails
    ADD COLUMN claim_token uuid,
    ADD COLUMN claimed_by  text,
    ADD CONSTRAINT emails_claim_complete CHECK ((claim_token IS NULL) = (claimed_by IS NULL));
