package ledger

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"sort"
	"time"

	"github.com/tallyhq/tally/pkg/config"
	"github.com/tallyhq/tally/pkg/money"
)

// IdemKey identifies an idempotency key; keys are scoped per organization.
type IdemKey struct{ OrgID, Key string }

// Replay is what a stored idempotency key points at, loaded by the store before a batch runs.
type Replay struct {
	Record      IdempotencyRecord
	Transaction *Transaction
	Hold        *Hold
}

type seenKey struct {
	hash   []byte
	result Result
	err    error
}

// Batch applies requests, in order, to accounts and holds that the store has locked inside one
// database transaction, and collects the rows to write. It is the whole of the ledger's rules.
type Batch struct {
	now             time.Time
	validity        config.Period
	platformAccount func(kind, currency string) string
	newID           func() string

	accounts map[string]*Account
	holds    map[string]*Hold
	existing map[IdemKey]Replay

	seen          map[IdemKey]seenKey
	expiryChecked map[string]bool

	// Transactions, NewHolds, ChangedHolds, Events and Keys are the rows to write.
	Transactions []*Transaction
	NewHolds     []*Hold
	ChangedHolds map[string]*Hold
	Events       []Event
	Keys         []IdempotencyRecord
	// Touched lists the organizations whose account changed, in first-touch order.
	Touched []string
	touched map[string]bool
}

// BatchConfig gives a Batch its clock, rules and locked state.
type BatchConfig struct {
	Now      time.Time
	Validity config.Period
	// PlatformAccount names the platform account of kind and currency this batch posts to
	// (the store picks a shard per batch).
	PlatformAccount func(kind, currency string) string
	NewID           func() string
	Accounts        map[string]*Account
	Holds           map[string]*Hold
	Existing        map[IdemKey]Replay
}

// NewBatch starts a batch over locked state.
func NewBatch(cfg BatchConfig) *Batch {
	return &Batch{
		now:             cfg.Now,
		validity:        cfg.Validity,
		platformAccount: cfg.PlatformAccount,
		newID:           cfg.NewID,
		accounts:        cfg.Accounts,
		holds:           cfg.Holds,
		existing:        cfg.Existing,
		seen:            map[IdemKey]seenKey{},
		expiryChecked:   map[string]bool{},
		ChangedHolds:    map[string]*Hold{},
		touched:         map[string]bool{},
	}
}

// Account returns the locked account of org, if the batch has it.
func (b *Batch) Account(orgID string) (*Account, bool) {
	a, ok := b.accounts[orgID]
	return a, ok
}

// Apply applies one request. Idempotent replays return the original result with Replayed set;
// a refused request changes nothing.
func (b *Batch) Apply(req *Request) (Result, error) {
	acct, ok := b.accounts[req.OrgID]
	if !ok {
		// Only credits, debits and adjustments open an account; the rest need one.
		switch req.Op {
		case OpReserve:
			return Result{}, fmt.Errorf("%w: the organization has no credits", ErrInsufficientFunds)
		case OpCapture, OpRelease, OpExpireHold:
			return Result{}, ErrHoldNotFound
		case OpExpireCredits:
			return Result{}, nil
		}
		return Result{}, fmt.Errorf("account of %q was not locked", req.OrgID)
	}
	if err := acct.Resident(); err != nil {
		return Result{}, err
	}
	b.expireIfDue(acct)
	if req.IdempotencyKey == "" {
		return b.apply(acct, req)
	}
	k := IdemKey{OrgID: req.OrgID, Key: req.IdempotencyKey}
	hash := RequestHash(req)
	if s, ok := b.seen[k]; ok {
		if !bytes.Equal(s.hash, hash) {
			return Result{}, ErrIdempotencyConflict
		}
		res := s.result
		res.Replayed = true
		return res, s.err
	}
	if r, ok := b.existing[k]; ok {
		if !bytes.Equal(r.Record.RequestHash, hash) || r.Record.Operation != req.Op {
			return Result{}, ErrIdempotencyConflict
		}
		return Result{Transaction: r.Transaction, Hold: r.Hold, Account: *acct, Replayed: true}, nil
	}
	res, err := b.apply(acct, req)
	b.seen[k] = seenKey{hash: hash, result: res, err: err}
	if err == nil {
		rec := IdempotencyRecord{OrgID: req.OrgID, Key: req.IdempotencyKey, Operation: req.Op, RequestHash: hash}
		if res.Transaction != nil {
			rec.TransactionID = res.Transaction.ID
		}
		if res.Hold != nil {
			rec.HoldID = res.Hold.ID
		}
		b.Keys = append(b.Keys, rec)
	}
	return res, err
}

func (b *Batch) apply(acct *Account, req *Request) (Result, error) {
	switch req.Op {
	case OpRelease, OpExpireHold, OpExpireCredits:
	default:
		if req.Currency != "" && req.Currency != acct.Currency {
			return Result{}, fmt.Errorf("%w: %s account, %s requested", ErrCurrencyMismatch, acct.Currency, req.Currency)
		}
	}
	switch req.Op {
	case OpCredit:
		return b.credit(acct, req)
	case OpDebit:
		if req.RequireFunds && acct.Available(b.now) < req.Amount {
			return Result{}, fmt.Errorf("%w: %s available, %s asked", ErrInsufficientFunds, acct.Available(b.now), req.Amount)
		}
		if req.RequireFunds {
			if err := acct.CheckSpend(b.now, req.Amount); err != nil {
				return Result{}, err
			}
			if err := acct.CheckProjectSpend(b.now, req.Metadata, req.Amount); err != nil {
				return Result{}, err
			}
		}
		return b.move(acct, req, TxDebit, EventDebit, -req.Amount, b.platformAccount(PlatformRevenue, acct.Currency), "")
	case OpAdjust:
		return b.move(acct, req, TxAdjustment, EventAdjustment, req.Amount, b.platformAccount(PlatformAdjustments, acct.Currency), "")
	case OpReserve:
		return b.reserve(acct, req)
	case OpCapture:
		return b.capture(acct, req)
	case OpRelease, OpExpireHold:
		return b.endHold(acct, req)
	case OpExpireCredits:
		return Result{Account: *acct}, nil
	}
	return Result{}, fmt.Errorf("%w: unknown operation %q", ErrInvalid, req.Op)
}

func (b *Batch) credit(acct *Account, req *Request) (Result, error) {
	source := req.Source
	if source == "" {
		source = SourcePayment
	}
	// Decided before anything changes, so a refused credit leaves the validity as it was.
	if _, err := balanceAfter(acct.Balance, req.Amount, acct.Held); err != nil {
		return Result{}, err
	}
	// Any credit renews the validity of the whole balance; an expired balance was already moved
	// out by expireIfDue, so the same rule starts a fresh period.
	acct.ExpiresAt = b.validity.AddTo(b.now)
	res, err := b.move(acct, req, TxCredit, EventCredit, req.Amount, b.platformAccount(string(source), acct.Currency), "")
	if err == nil {
		b.Events[len(b.Events)-1].CreditSource = source
	}
	return res, err
}

// balanceAfter returns balance+delta, or ErrOverflow when the change would take the balance, the
// available amount (balance - held) or the platform's counter-entry (-delta) beyond the int64
// range of nanos. Every change of an organization's balance is decided by it before it is made.
func balanceAfter(balance, delta, held money.Nanos) (money.Nanos, error) {
	if _, err := money.Neg(delta); err != nil {
		return 0, ErrOverflow
	}
	bal, err := money.Add(balance, delta)
	if err != nil {
		return 0, ErrOverflow
	}
	if _, err := money.Sub(bal, held); err != nil {
		return 0, ErrOverflow
	}
	return bal, nil
}

// move books delta on the org account against the platform account and records the transaction.
// A change that would overflow is refused before anything changes.
func (b *Batch) move(acct *Account, req *Request, kind TxKind, ev EventKind, delta money.Nanos, platform, holdID string) (Result, error) {
	bal, err := balanceAfter(acct.Balance, delta, acct.Held)
	if err != nil {
		return Result{}, err
	}
	acct.Balance = bal
	acct.Version++
	tx := &Transaction{
		ID:             b.newID(),
		OrgID:          acct.OrgID,
		Kind:           kind,
		Amount:         delta,
		BalanceAfter:   acct.Balance,
		Currency:       acct.Currency,
		Description:    req.Description,
		Metadata:       req.Metadata,
		Reason:         req.Reason,
		Reference:      req.Reference,
		IdempotencyKey: req.IdempotencyKey,
		Actor:          req.Actor,
		HoldID:         holdID,
		CreatedAt:      b.now,
		Pricing:        req.Pricing,
		Postings: []Posting{
			{AccountID: acct.ID, Account: "org:" + acct.OrgID, Amount: delta},
			{Account: platform, Amount: -delta},
		},
	}
	if tx.IdempotencyKey == "" {
		tx.IdempotencyKey = "tx:" + tx.ID
	}
	b.Transactions = append(b.Transactions, tx)
	b.event(acct, ev, tx.ID, holdID, delta)
	if kind == TxDebit || kind == TxCapture {
		b.countSpend(acct, -delta)
		acct.countProjectSpend(b.now, req.Metadata, -delta)
	}
	return Result{Transaction: tx, Account: *acct}, nil
}

func (b *Batch) reserve(acct *Account, req *Request) (Result, error) {
	if avail := acct.Available(b.now); avail < req.Amount {
		return Result{}, fmt.Errorf("%w: %s available, %s asked", ErrInsufficientFunds, avail, req.Amount)
	}
	if err := acct.CheckSpend(b.now, req.Amount); err != nil {
		return Result{}, err
	}
	// The project's limit, like the organization's: checked against the month's charges, and
	// the hold not counted (its capture is).
	if err := acct.CheckProjectSpend(b.now, req.Metadata, req.Amount); err != nil {
		return Result{}, err
	}
	held, err := money.Add(acct.Held, req.Amount)
	if err != nil {
		return Result{}, ErrOverflow
	}
	if _, err := balanceAfter(acct.Balance, 0, held); err != nil {
		return Result{}, err
	}
	h := &Hold{
		ID:          b.newID(),
		OrgID:       acct.OrgID,
		Amount:      req.Amount,
		Currency:    acct.Currency,
		Status:      HoldActive,
		Description: req.Description,
		ExpiresAt:   b.now.Add(req.TTL),
		CreatedAt:   b.now,
	}
	acct.Held = held
	acct.Version++
	b.NewHolds = append(b.NewHolds, h)
	b.holds[h.ID] = h
	b.event(acct, EventHoldPlaced, "", h.ID, req.Amount)
	return Result{Hold: h, Account: *acct}, nil
}

func (b *Batch) capture(acct *Account, req *Request) (Result, error) {
	h, ok := b.holds[req.HoldID]
	if !ok || h.OrgID != acct.OrgID {
		return Result{}, ErrHoldNotFound
	}
	if h.Status != HoldActive {
		return Result{}, fmt.Errorf("%w: it is %s", ErrHoldNotActive, h.Status)
	}
	if !h.ExpiresAt.After(b.now) {
		return Result{}, fmt.Errorf("%w: it expired at %s", ErrHoldNotActive, h.ExpiresAt.Format(time.RFC3339))
	}
	// The charge is decided against the balance without this hold before the hold changes, so a
	// refused capture leaves the hold active and the account as it was.
	if _, err := balanceAfter(acct.Balance, -req.Amount, acct.Held-h.Amount); err != nil {
		return Result{}, err
	}
	acct.Held -= h.Amount
	h.Status, h.EndedAt, h.Captured = HoldCaptured, b.now, req.Amount
	b.ChangedHolds[h.ID] = h
	if req.Amount == 0 {
		acct.Version++
		b.event(acct, EventHoldReleased, "", h.ID, h.Amount)
		return Result{Hold: h, Account: *acct}, nil
	}
	res, err := b.move(acct, req, TxCapture, EventCapture, -req.Amount, b.platformAccount(PlatformRevenue, acct.Currency), h.ID)
	if err != nil {
		return Result{}, err
	}
	h.TransactionID = res.Transaction.ID
	res.Hold = h
	return res, nil
}

func (b *Batch) endHold(acct *Account, req *Request) (Result, error) {
	h, ok := b.holds[req.HoldID]
	if !ok || h.OrgID != acct.OrgID {
		return Result{}, ErrHoldNotFound
	}
	if h.Status != HoldActive {
		return Result{Hold: h, Account: *acct}, nil // already ended: releasing again is a no-op
	}
	status, ev := HoldReleased, EventHoldReleased
	if req.Op == OpExpireHold {
		if h.ExpiresAt.After(b.now) {
			return Result{Hold: h, Account: *acct}, nil
		}
		status, ev = HoldExpired, EventHoldExpired
	}
	acct.Held -= h.Amount
	acct.Version++
	h.Status, h.EndedAt = status, b.now
	b.ChangedHolds[h.ID] = h
	b.event(acct, ev, "", h.ID, h.Amount)
	return Result{Hold: h, Account: *acct}, nil
}

// expireIfDue moves a positive balance past its validity to the expired-credits account, once per
// account per batch, before anything else touches it.
func (b *Batch) expireIfDue(acct *Account) {
	if b.expiryChecked[acct.OrgID] {
		return
	}
	b.expiryChecked[acct.OrgID] = true
	if !acct.Expired(b.now) {
		return
	}
	expiredAt := acct.ExpiresAt
	acct.ExpiresAt = time.Time{}
	if acct.Balance <= 0 {
		acct.Version++
		b.touch(acct.OrgID)
		return
	}
	req := &Request{
		Op:             OpExpireCredits,
		OrgID:          acct.OrgID,
		IdempotencyKey: "expiry:" + expiredAt.UTC().Format(time.RFC3339Nano),
		Description:    "credits expired",
		Reason:         "validity ended at " + expiredAt.UTC().Format(time.RFC3339),
		Actor:          "ledger",
	}
	res, err := b.move(acct, req, TxExpiry, EventExpiry, -acct.Balance, b.platformAccount(PlatformExpired, acct.Currency), "")
	if err == nil {
		b.Keys = append(b.Keys, IdempotencyRecord{OrgID: acct.OrgID, Key: req.IdempotencyKey, Operation: OpExpireCredits, RequestHash: RequestHash(req), TransactionID: res.Transaction.ID})
	}
}

func (b *Batch) event(acct *Account, kind EventKind, txID, holdID string, amount money.Nanos) {
	b.touch(acct.OrgID)
	b.Events = append(b.Events, Event{
		OrgID:         acct.OrgID,
		Kind:          kind,
		TransactionID: txID,
		HoldID:        holdID,
		Amount:        amount,
		Balance:       acct.Balance,
		Available:     acct.Available(b.now),
		Currency:      acct.Currency,
		ExpiresAt:     acct.ExpiresAt,
		OccurredAt:    b.now,
	})
}

func (b *Batch) touch(orgID string) {
	if !b.touched[orgID] {
		b.touched[orgID] = true
		b.Touched = append(b.Touched, orgID)
	}
}

// RequestHash fingerprints the parameters of a request, so a reused idempotency key with other
// parameters is told apart from a retry. The fingerprint is stored with the key: its input, each
// string as its big-endian uint32 length and bytes, numbers as big-endian int64, must never
// change. It is built in one buffer and hashed once (every debit computes one).
func RequestHash(r *Request) []byte {
	var stack [512]byte
	b := stack[:0]
	field := func(s string) {
		b = binary.BigEndian.AppendUint32(b, uint32(len(s))) //nolint:gosec // strings are bounded far below 4 GiB
		b = append(b, s...)
	}
	field(string(r.Op))
	field(r.OrgID)
	if r.Usage != nil {
		// A usage debit is identified by the usage as sent, not by its price: a retry after a
		// price change is still the same call.
		field("usage")
		field(r.Usage.ModelID)
		b = binary.BigEndian.AppendUint64(b, uint64(r.Usage.OccurredAt.UnixNano())) //nolint:gosec // the two's complement bytes, as binary.Write wrote them
		units := make([]string, 0, len(r.Usage.Quantities))
		for u := range r.Usage.Quantities {
			units = append(units, u)
		}
		sort.Strings(units)
		for _, u := range units {
			field(u)
			field(r.Usage.Quantities[u])
		}
	} else {
		b = binary.BigEndian.AppendUint64(b, uint64(r.Amount)) //nolint:gosec // the two's complement bytes, as binary.Write wrote them
		field(r.Currency)
	}
	field(r.Description)
	field(r.Reason)
	field(r.Reference)
	field(string(r.Source))
	field(r.HoldID)
	b = binary.BigEndian.AppendUint64(b, uint64(r.TTL)) //nolint:gosec // the two's complement bytes, as binary.Write wrote them
	if r.RequireFunds {
		b = append(b, 1)
	} else {
		b = append(b, 0)
	}
	if len(r.Metadata) > 0 {
		keys := make([]string, 0, len(r.Metadata))
		for k := range r.Metadata {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			field(k)
			field(r.Metadata[k])
		}
	}
	sum := sha256.Sum256(b)
	return sum[:]
}
