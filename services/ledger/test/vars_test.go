package test

import moneypb "google.golang.org/genproto/googleapis/type/money"

var (
	moneyOverflow = moneypb.Money{CurrencyCode: "USD", Units: 9_300_000_000}
	moneyBadNanos = moneypb.Money{CurrencyCode: "USD", Units: 1, Nanos: 1_000_000_000}
)
