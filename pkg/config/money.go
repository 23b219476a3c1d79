package config

import (
	"fmt"

	"github.com/tallyhq/tally/pkg/money"
)

// Decimal returns the exact amount of key, written in decimal units ("12.5", "1000000"), or def.
func (e *Env) Decimal(key string, def money.Nanos) money.Nanos {
	v, ok := e.get(key)
	if !ok {
		return def
	}
	n, err := money.ParseDecimal(v)
	if err != nil {
		e.errs = append(e.errs, fmt.Errorf("%s: %w", key, err))
		return def
	}
	return n
}

// MaxRequestAmount reads TALLY_MAX_REQUEST_AMOUNT, the largest amount one request may carry
// (decimal units of its currency, default 1000000). Every service that accepts amounts or prices
// refuses a larger one with InvalidArgument naming the setting.
func (e *Env) MaxRequestAmount() money.Limit {
	v, ok := e.get(money.MaxRequestAmountKey)
	if !ok {
		return money.Limit{}
	}
	l, err := money.ParseLimit(v)
	if err != nil {
		e.errs = append(e.errs, fmt.Errorf("%s: %w", money.MaxRequestAmountKey, err))
		return money.Limit{}
	}
	return l
}
