// Package ledgerclient is tally's one client of the ledger (tally.ledger.v1): balances,
// credits, debits, adjustments and the event stream, over plain Go types, with a deadline per
// call and typed errors.
//
// Every failure is classified once, here: the ledger's definitive refusals (ErrRefused and its
// refinements ErrFailedPrecondition, ErrKeyReused, ErrNotFound), an outage (ErrUnavailable —
// including a refusal of our own credentials, which is our problem, not the caller's), and a
// reply that cannot be decoded (ErrBadReply, never a money error, so no caller blames its own
// client for it). The caller's own cancellation passes through as its context error.
package ledgerclient
