-- Abandoned checkouts expire: the expiry sweep looks for pending payments past the expiry of
-- their Checkout Session that no webhook settled, and the card wallet a payment went through
-- (Google Pay is a card wallet at Stripe) is recorded next to its payment method.
ALTER TABLE payments
    ADD COLUMN payment_wallet text NOT NULL DEFAULT '';
CREATE INDEX payments_pending_expiry_idx ON payments (expires_at)
    WHERE status = 'pending' AND credited_at IS NULL AND expires_at IS NOT NULL;
