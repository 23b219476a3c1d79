// Package test runs the notifications service end to end: real replicas (notificationstest) over real
// gRPC listeners, a real ledger (ledgertest), real PostgreSQL and a real SMTP server (mailpit).
package test

import (
	"os"
	"testing"

	"github.com/tallyhq/tally/pkg/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }
