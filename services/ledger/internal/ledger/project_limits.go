package ledger

import (
	"fmt"
	"time"

	"github.com/tallyhq/tally/pkg/money"
)

// MaxProjectLimits bounds the projects of one organization that have a limit.
const MaxProjectLimits = 100

// MaxProjectLength bounds a project tag, in bytes.
const MaxProjectLength = 128

// ProjectLimit is a monthly spend limit of one project of an organization (the "project"
// metadata of its debits), with the project's charges of the month, in the account's currency.
// A project's charges are counted from when its limit was first set (seeded with the usage
// summary's count of the month so far).
type ProjectLimit struct {
	Project string
	// Amount caps the project's charges of a UTC calendar month; always > 0 (0 removes the row).
	Amount money.Nanos
	Spend  Spend
	// Changed says the batch counted a charge on it: the store writes it with the batch.
	Changed bool
}

// ProjectLimitError refuses a charge that the limit of Project does not allow. It is an
// ErrSpendLimitReached (reason SPEND_LIMIT_REACHED), and names the project.
type ProjectLimitError struct {
	Project string
	msg     string
}

func (e *ProjectLimitError) Error() string { return e.msg }

// Unwrap makes a ProjectLimitError an ErrSpendLimitReached.
func (e *ProjectLimitError) Unwrap() error { return ErrSpendLimitReached }

// MonthSpend is what the project was charged in the UTC month of now.
func (p ProjectLimit) MonthSpend(now time.Time) money.Nanos {
	if p.Spend.Month.Equal(MonthOf(now)) {
		return p.Spend.Amount
	}
	return 0
}

// Remaining is what the project's limit still allows this month (zero once reached).
func (p ProjectLimit) Remaining(now time.Time) money.Nanos {
	return max(p.Amount-p.MonthSpend(now), 0)
}

// Check refuses amount when the project's limit is reached or amount would pass it.
func (p ProjectLimit) Check(now time.Time, amount money.Nanos, currency string) error {
	remaining := p.Remaining(now)
	if remaining > 0 && amount <= remaining {
		return nil
	}
	return &ProjectLimitError{Project: p.Project, msg: fmt.Sprintf("%s: project %q: %s of the %s %s monthly limit spent this month (UTC), %s asked",
		ErrSpendLimitReached, p.Project, p.MonthSpend(now).Display(), p.Amount.Display(), currency, amount.Display())}
}

// ProjectsComplete says whether Projects holds every project limit of the account, so that a
// project missing from it has no limit (a state read without them proves nothing about them).
func (a Account) ProjectsComplete() bool {
	return len(a.Projects) == a.ProjectLimitCount
}

// CheckProjectSpend refuses amount when the metadata names a project whose limit does not allow
// it; a charge without a project, or of a project without a limit, passes.
func (a Account) CheckProjectSpend(now time.Time, metadata map[string]string, amount money.Nanos) error {
	p, ok := a.Projects[metadata[MetaProject]]
	if !ok {
		return nil
	}
	return p.Check(now, amount, a.Currency)
}

// countProjectSpend counts a charge booked on acct against the limit of the project its
// metadata names, if it has one.
func (a *Account) countProjectSpend(now time.Time, metadata map[string]string, amount money.Nanos) {
	p, ok := a.Projects[metadata[MetaProject]]
	if !ok {
		return
	}
	sp := Account{Spend: p.Spend}
	sp.addSpend(now, amount)
	p.Spend, p.Changed = sp.Spend, true
}

// ValidateProjectLimit checks a project limit an admin sets (amount 0 removes it).
func ValidateProjectLimit(project string, amount money.Nanos) error {
	switch {
	case project == "":
		return fmt.Errorf("%w: project: required", ErrInvalid)
	case len(project) > MaxProjectLength:
		return fmt.Errorf("%w: project: at most %d bytes", ErrInvalid, MaxProjectLength)
	case amount < 0:
		return fmt.Errorf("%w: limit: must not be negative (0 removes the limit)", ErrInvalid)
	}
	return nil
}
