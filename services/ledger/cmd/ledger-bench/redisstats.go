package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// redisCommands reads how many commands Redis has processed (INFO stats), so that a scenario
// without debits can print the Redis commands each call cost: Authorize's batched reads send
// one HMGET per organization of a batch, not per call.
func redisCommands(ctx context.Context, url string) (int64, error) {
	opts, err := redis.ParseURL(url)
	if err != nil {
		return 0, fmt.Errorf("parsing the Redis URL: %w", err)
	}
	rdb := redis.NewClient(opts)
	defer func() { _ = rdb.Close() }()
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	info, err := rdb.Info(ctx, "stats").Result()
	if err != nil {
		return 0, fmt.Errorf("reading Redis's stats: %w", err)
	}
	for line := range strings.SplitSeq(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "total_commands_processed:"); ok {
			return strconv.ParseInt(v, 10, 64)
		}
	}
	return 0, fmt.Errorf("no total_commands_processed in Redis's stats")
}
