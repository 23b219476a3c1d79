package app

import (
	"errors"
	"fmt"
	"time"

	"github.com/tallyhq/tally/pkg/catalog"
	"github.com/tallyhq/tally/pkg/money"
	"github.com/tallyhq/tally/services/ledger/internal/ledger"
)

// ErrPricingUnavailable is returned for usage while no price list has been received yet.
var ErrPricingUnavailable = errors.New("the price list is not loaded yet")

// Pricer is the ledger's in-memory copy of the price list (catalog.Watcher), kept current by the
// pricing service's WatchCatalog stream: pricing a call is never a network hop.
type Pricer interface {
	Current() *catalog.Catalog
}

// price quotes usage with the version in force when it happened: one rounding, up to the nano,
// on the total (see catalog.Quote).
func (a *App) price(u *ledger.Usage) (money.Money, *ledger.PricedUsage, error) {
	if err := ledger.ValidateUsage(u); err != nil {
		return money.Money{}, nil, err
	}
	if a.cfg.Pricer == nil {
		return money.Money{}, nil, fmt.Errorf("%w: no pricing service configured (TALLY_PRICING_ADDR)", ErrPricingUnavailable)
	}
	cat := a.cfg.Pricer.Current()
	if cat == nil {
		return money.Money{}, nil, ErrPricingUnavailable
	}
	now := a.cfg.Now()
	at := u.OccurredAt
	if at.IsZero() {
		at = now
	}
	if err := catalog.CheckUsageTime(at, now); err != nil {
		return money.Money{}, nil, err
	}
	if at.Before(now.Add(-ledger.MaxUsageAge)) {
		return money.Money{}, nil, fmt.Errorf("%w: usage.occurred_at lies more than %d days in the past; charge older usage with an amount",
			ledger.ErrInvalid, ledger.MaxUsageAge/(24*time.Hour))
	}
	usage, err := catalog.ParseUsage(u.Quantities)
	if err != nil {
		return money.Money{}, nil, err
	}
	q, err := cat.Quote(u.ModelID, usage, at)
	if err != nil {
		return money.Money{}, nil, err
	}
	if q.Total <= 0 {
		return money.Money{}, nil, fmt.Errorf("%w: the usage is priced at zero, there is nothing to charge", ledger.ErrInvalid)
	}
	p := &ledger.PricedUsage{ModelID: q.ModelID, PriceVersionID: q.VersionID, CatalogVersion: q.CatalogVersion, OccurredAt: at.UTC().Truncate(time.Microsecond)}
	for _, l := range q.Lines {
		p.Lines = append(p.Lines, ledger.UsageLine{Unit: l.Unit, Quantity: l.Quantity.String(), UnitPrice: l.UnitPrice, Per: l.Per, Amount: l.Amount})
	}
	return money.Money{Nanos: q.Total, Currency: q.Currency}, p, nil
}
