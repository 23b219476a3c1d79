package ledger

import (
	"cmp"
	"fmt"
	"math/big"
	"slices"
	"time"
)

// UsageKind says what a usage item is.
type UsageKind string

// Usage kinds.
const (
	UsageModel    UsageKind = "model"
	UsageInstance UsageKind = "instance"
	UsageOther    UsageKind = "other"
	// UsageProject attributes a charge to the project its metadata names (MetaProject), besides
	// its model, instance type or "other": project rows are a second view of the same charges,
	// never added to the days' totals.
	UsageProject UsageKind = "project"
)

// Metadata keys of debits and captures that name what was used. Usage-priced debits name their
// model through their pricing; the instances-metering service sends instance_type on every
// rental period.
const (
	MetaModelID      = "model_id"
	MetaInstanceType = "instance_type"
	// MetaProject names the project (of the organization) a debit or capture is for.
	MetaProject = "project"
)

// Usage summary windows, in days.
const (
	DefaultUsageDays = 30
	MaxUsageDays     = 90
)

// UsageItem names one model, one instance type, or everything else.
type UsageItem struct {
	Kind UsageKind
	ID   string
}

// UsageSource is what the usage summary reads of one event of the outbox: the event and, for an
// event with a transaction, the transaction's kind, amount, day and the names it carries.
type UsageSource struct {
	Seq          int64
	OrgID        string
	TxKind       TxKind // "" for events without a transaction (holds placed or released)
	Amount       int64  // the transaction's signed change of the balance
	Currency     string
	CreatedAt    time.Time
	PricingModel string // PricedUsage.ModelID of a usage-priced debit
	MetaModel    string
	MetaInstance string
	MetaProject  string
}

// UsageOf classifies a transaction for the usage summary: debits and captures are usage (of the
// priced model, else the model or instance type of their metadata, else "other"); credits,
// refunds and other adjustments and expiry are not.
func UsageOf(s UsageSource) (UsageItem, bool) {
	if s.TxKind != TxDebit && s.TxKind != TxCapture {
		return UsageItem{}, false
	}
	switch {
	case s.PricingModel != "":
		return UsageItem{UsageModel, s.PricingModel}, true
	case s.MetaModel != "":
		return UsageItem{UsageModel, s.MetaModel}, true
	case s.MetaInstance != "":
		return UsageItem{UsageInstance, s.MetaInstance}, true
	}
	return UsageItem{UsageOther, string(UsageOther)}, true
}

// UsageKey is one row of the daily usage table.
type UsageKey struct {
	OrgID    string
	Day      time.Time // midnight UTC
	Item     UsageItem
	Currency string
}

// UsageDelta is what a page of events adds to one row.
type UsageDelta struct {
	Key    UsageKey
	Amount *big.Int // nanos consumed (positive)
	Count  int64
}

// UTCDay returns the UTC day of t, as midnight UTC.
func UTCDay(t time.Time) time.Time {
	y, m, d := t.UTC().Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

// AggregateUsage sums the usage of a page of events per row, in a stable order (so concurrent
// writers of the same rows lock them in the same order).
func AggregateUsage(sources []UsageSource) []UsageDelta {
	byKey := map[UsageKey]*UsageDelta{}
	var out []*UsageDelta
	var amount big.Int // reused: one allocation per page, not per event
	for _, s := range sources {
		item, ok := UsageOf(s)
		if !ok {
			continue
		}
		items := [2]UsageItem{item}
		n := 1
		if s.MetaProject != "" {
			items[1], n = UsageItem{UsageProject, s.MetaProject}, 2
		}
		for _, it := range items[:n] {
			k := UsageKey{OrgID: s.OrgID, Day: UTCDay(s.CreatedAt), Item: it, Currency: s.Currency}
			d := byKey[k]
			if d == nil {
				d = &UsageDelta{Key: k, Amount: new(big.Int)}
				byKey[k] = d
				out = append(out, d)
			}
			// The transaction amount is the signed change of the balance: a charge is negative.
			d.Amount.Sub(d.Amount, amount.SetInt64(s.Amount))
			d.Count++
		}
	}
	slices.SortFunc(out, func(a, b *UsageDelta) int {
		return cmp.Or(cmp.Compare(a.Key.OrgID, b.Key.OrgID), a.Key.Day.Compare(b.Key.Day),
			cmp.Compare(a.Key.Item.Kind, b.Key.Item.Kind), cmp.Compare(a.Key.Item.ID, b.Key.Item.ID),
			cmp.Compare(a.Key.Currency, b.Key.Currency))
	})
	deltas := make([]UsageDelta, len(out))
	for i, d := range out {
		deltas[i] = *d
	}
	return deltas
}

// UsageWindow is the days of a usage summary: From to To (midnight UTC), both included.
type UsageWindow struct {
	From, To time.Time
	Days     int
}

// NewUsageWindow returns the window of the last days ending on now's UTC day; 0 days is the
// default, fewer than 1 or more than MaxUsageDays are refused.
func NewUsageWindow(days int, now time.Time) (UsageWindow, error) {
	if days == 0 {
		days = DefaultUsageDays
	}
	if days < 1 || days > MaxUsageDays {
		return UsageWindow{}, fmt.Errorf("%w: days must be between 1 and %d", ErrInvalid, MaxUsageDays)
	}
	to := UTCDay(now)
	return UsageWindow{From: to.AddDate(0, 0, -(days - 1)), To: to, Days: days}, nil
}

// UsageRow is one stored row of the daily usage table, read back for a summary.
type UsageRow struct {
	Day    time.Time
	Item   UsageItem
	Amount *big.Int
	Count  int64
}

// UsageAmount is what one item consumed, on a day or over the window.
type UsageAmount struct {
	Item   UsageItem
	Amount *big.Int
	Count  int64
}

// UsageDay is one day of a summary.
type UsageDay struct {
	Day   time.Time
	Total *big.Int
	Items []UsageAmount
}

// UsageSummary is an organization's usage over a window.
type UsageSummary struct {
	OrgID    string
	Currency string
	Window   UsageWindow
	Days     []UsageDay
	Totals   []UsageAmount
	// Projects are the window's charges per project (debits and captures with the metadata
	// MetaProject), largest first; charges without a project are in none.
	Projects []UsageAmount
}

// SummarizeUsage lays rows out over every day of the window, oldest first (days without rows
// have a zero total), with the totals per item over the window; items are sorted largest first.
func SummarizeUsage(orgID, currency string, w UsageWindow, rows []UsageRow) UsageSummary {
	s := UsageSummary{OrgID: orgID, Currency: currency, Window: w, Days: make([]UsageDay, w.Days)}
	index := make(map[time.Time]int, w.Days)
	for i := range s.Days {
		day := w.From.AddDate(0, 0, i)
		s.Days[i] = UsageDay{Day: day, Total: new(big.Int)}
		index[day] = i
	}
	totals := map[UsageItem]*UsageAmount{}
	projects := map[UsageItem]*UsageAmount{}
	for _, r := range rows {
		i, ok := index[UTCDay(r.Day)]
		if !ok {
			continue
		}
		if r.Item.Kind == UsageProject {
			p := projects[r.Item]
			if p == nil {
				p = &UsageAmount{Item: r.Item, Amount: new(big.Int)}
				projects[r.Item] = p
			}
			p.Amount.Add(p.Amount, r.Amount)
			p.Count += r.Count
			continue
		}
		d := &s.Days[i]
		d.Total.Add(d.Total, r.Amount)
		d.Items = append(d.Items, UsageAmount{Item: r.Item, Amount: new(big.Int).Set(r.Amount), Count: r.Count})
		t := totals[r.Item]
		if t == nil {
			t = &UsageAmount{Item: r.Item, Amount: new(big.Int)}
			totals[r.Item] = t
		}
		t.Amount.Add(t.Amount, r.Amount)
		t.Count += r.Count
	}
	for i := range s.Days {
		sortUsage(s.Days[i].Items)
	}
	for _, t := range totals {
		s.Totals = append(s.Totals, *t)
	}
	sortUsage(s.Totals)
	for _, p := range projects {
		s.Projects = append(s.Projects, *p)
	}
	sortUsage(s.Projects)
	return s
}

func sortUsage(items []UsageAmount) {
	slices.SortFunc(items, func(a, b UsageAmount) int {
		return cmp.Or(b.Amount.Cmp(a.Amount), cmp.Compare(a.Item.Kind, b.Item.Kind), cmp.Compare(a.Item.ID, b.Item.ID))
	})
}
