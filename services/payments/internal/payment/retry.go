package payment

import "time"

// Backoff spaces the retries of work that failed on a dependency: Base after the first failure,
// doubling with each further failure, never more than Max.
type Backoff struct {
	Base time.Duration
	Max  time.Duration
}

// Delay is how long to wait after the failures-th failed attempt (failures ≥ 1).
func (b Backoff) Delay(failures int) time.Duration {
	if b.Base <= 0 {
		return 0
	}
	d := b.Base
	for i := 1; i < failures; i++ {
		if b.Max > 0 && d >= b.Max {
			break
		}
		if d > time.Duration(1<<62) {
			break // doubling again would overflow
		}
		d *= 2
	}
	if b.Max > 0 && d > b.Max {
		d = b.Max
	}
	return d
}

// ProcessorRefundStatus is the state of a refund at the processor (Stripe's refund status).
type ProcessorRefundStatus string

// Stripe's refund statuses.
const (
	ProcessorRefundPending        ProcessorRefundStatus = "pending"
	ProcessorRefundRequiresAction ProcessorRefundStatus = "requires_action"
	ProcessorRefundSucceeded      ProcessorRefundStatus = "succeeded"
	ProcessorRefundFailed         ProcessorRefundStatus = "failed"
	ProcessorRefundCanceled       ProcessorRefundStatus = "canceled"
)

// Settlement is what a processor refund status means for tally's refund.
type Settlement int

// Settlements.
const (
	// InFlight: the processor accepted the refund and has not settled it yet (pending,
	// requires_action, or a status tally does not know): the refund stays pending and is looked at
	// again.
	InFlight Settlement = iota
	// Settled: the money went back; the credits are taken back and the refund completes.
	Settled
	// Refused: the processor will not return the money; the refund fails, nothing is taken back.
	Refused
)

// Settlement classifies s.
func (s ProcessorRefundStatus) Settlement() Settlement {
	switch s {
	case ProcessorRefundSucceeded:
		return Settled
	case ProcessorRefundFailed, ProcessorRefundCanceled:
		return Refused
	}
	return InFlight
}
