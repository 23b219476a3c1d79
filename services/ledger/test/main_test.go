// Package test drives a real ledger (PostgreSQL, Redis, gRPC over 127.0.0.1) end to end.
package test

import (
	"os"
	"testing"

	"github.com/tallyhq/tally/pkg/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }
