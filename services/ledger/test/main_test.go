// Package test drives a real ledger (PostgreSQL, Redis, gRPC over 127.0.0.1) end to end.
package test

import (
	"context"
	"os"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/tallyhq/tally/pkg/testenv"
)

func TestMain(m *testing.M) {
	// The fault tests stop Redis on purpose: go-redis's line per failed dial is noise here.
	redis.SetLogger(quietRedis{})
	os.Exit(testenv.Main(m))
}

type quietRedis struct{}

func (quietRedis) Printf(context.Context, string, ...any) {}
