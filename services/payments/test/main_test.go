// Package test drives a real payments service end to end: a real ledger, PostgreSQL, stripe-mock
// for Stripe API calls, and webhook payloads signed with a test secret, over gRPC on 127.0.0.1.
package test

import (
	"os"
	"testing"

	"github.com/tallyhq/tally/pkg/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }
