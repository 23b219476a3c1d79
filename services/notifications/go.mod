module github.com/tallyhq/tally/services/notifications

go 1.26.8

require github.com/tallyhq/tally/pkg v0.0.0

replace github.com/tallyhq/tally/pkg => ../../pkg
