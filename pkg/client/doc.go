// Package client is the Go SDK of tally for model-serving backends: Authorize, Debit,
// Reserve/Capture/Release and credit leases over one connection to the ledger.
//
// One connection, balanced: the Client dials its Target with pkg/rpcclient (round_robin over
// every address the resolver returns — dns:///ledger-headless:9091 in Kubernetes,
// static:///a:9091,b:9091 — and keepalive pings), authenticated with the service token
// mechanism of the other services (a fixed token, or an auth.TokenSource renewed in the
// background).
//
// Debits are batched: concurrent Debit calls are sent together on a DebitStream (up to
// BatchPolicy.MaxSize per message, waiting at most BatchPolicy.Linger for a batch to fill, and
// not at all when nothing is in flight), each call returning when the ledger acknowledges its
// debit, which it does only after the commit. The client never has more unacknowledged debits on
// a stream than the ledger's current max_in_flight, which the ledger resizes during the stream
// from its commit latency (so that acknowledgements come within its target); past that Debit
// waits (back-pressure), bounded by its context. A ledger that refuses the
// stream for good (Unimplemented, or PermissionDenied from an auth policy that predates it) is
// called with unary Debit instead, with the same results.
//
// Retries: a call or a streamed debit that fails with Unavailable, or with a deadline the client
// set itself (Config.Timeout per attempt, the ack deadline on a stream), is sent again after an
// exponential backoff with full jitter, with the same idempotency key, up to
// RetryPolicy.MaxAttempts. A definitive answer (InvalidArgument, FailedPrecondition,
// AlreadyExists, NotFound, ...) is never retried. When a stream breaks, the client opens a new
// one and resends every debit not yet acknowledged, with its key: the ledger answers a debit it
// had already committed as a replay, so nothing is lost or doubled. A Debit whose context ends
// before its ack returns the context's error: the debit may or may not be committed, and calling
// Debit again with the same key is always safe.
//
// Errors are those of pkg/ledgerclient (errors.Is with ErrUnavailable, ErrRefused,
// ErrFailedPrecondition, ErrKeyReused, ErrNotFound, re-exported here); Reason gives the
// machine-readable reason of a streamed refusal (e.g. "INSUFFICIENT_FUNDS").
//
// Observability is opt-in and never global: Config.Registerer receives the client's Prometheus
// metrics (tally_client_*), Config.TracerProvider traces every call (otelgrpc, W3C traceparent).
//
// # Credit leases
//
// Client.Lease holds a lease on an organization's credits: a hold (Reserve) the lease draws down
// locally, so Lease.Authorize and Lease.Debit need no round trip. In the background the lease
// reserves the next hold before the current one runs low, switches to it, and captures the old
// one for exactly what was drawn from it (Capture below the hold frees the rest). Close captures
// the last hold. Because every hold counts against the organization's available amount and a
// lease never draws more than its hold, local authorisation can never spend more than the
// balance, with any number of leases and clients on one organization.
//
// Exactness: the captured amounts are the sums of the local debits of each hold, and every
// ledger write of a lease has an idempotency key derived from the lease's id and the hold's
// generation ("tally-lease/<lease>/<gen>/capture"), so a capture retried across a timeout or a
// ledger restart is replayed, never doubled. A local debit's key is remembered for the current
// and the previous hold: Lease.Debit with the same key again is a replay.
//
// Crash semantics: a lease lives in the process. If the process dies, its current hold is
// neither captured nor released: it expires at its TTL (LeaseConfig.TTL) and the ledger's sweep
// releases it, so the organization is never overcharged, but what was drawn from that hold since
// its last capture (at most one hold, at most LeaseConfig.CaptureInterval of traffic) is never
// charged. Keep holds small and captures frequent where that loss matters. A lease stops drawing
// from a hold a quarter of its TTL before it expires, so a hold that could not be captured in
// time (the ledger down for longer than that) is never drawn past its life; if the capture
// still fails because the hold expired, the drawn amount is charged by a Debit with a derived key.
package client
