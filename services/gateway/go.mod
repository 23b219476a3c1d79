module github.com/tallyhq/tally/services/gateway

go 1.26.8

require github.com/tallyhq/tally/pkg v0.0.0

replace github.com/tallyhq/tally/pkg => ../../pkg

require github.com/tallyhq/tally/services/ledger v0.0.0

replace github.com/tallyhq/tally/services/ledger => ../ledger
