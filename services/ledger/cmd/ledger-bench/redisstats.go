package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// redisStats are counters of Redis's INFO stats.
type redisStats struct {
	// commands processed, and reads: the socket reads Redis served, about one per round trip
	// (a pipeline's commands arrive in one).
	commands, reads int64
}

// readRedisStats reads Redis's counters, so that a scenario without debits can print the Redis
// commands and round trips each call cost: Authorize's batched reads send one pipeline per
// batch, with one HMGET per organization of the batch.
func readRedisStats(ctx context.Context, url string) (redisStats, error) {
	opts, err := redis.ParseURL(url)
	if err != nil {
		return redisStats{}, fmt.Errorf("parsing the Redis URL: %w", err)
	}
	rdb := redis.NewClient(opts)
	defer func() { _ = rdb.Close() }()
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	info, err := rdb.Info(ctx, "stats").Result()
	if err != nil {
		return redisStats{}, fmt.Errorf("reading Redis's stats: %w", err)
	}
	var st redisStats
	for line := range strings.SplitSeq(info, "\n") {
		k, v, _ := strings.Cut(strings.TrimSpace(line), ":")
		switch k {
		case "total_commands_processed":
			st.commands, err = strconv.ParseInt(v, 10, 64)
		case "total_reads_processed":
			st.reads, err = strconv.ParseInt(v, 10, 64)
		}
		if err != nil {
			return redisStats{}, fmt.Errorf("reading Redis's %s: %w", k, err)
		}
	}
	return st, nil
}
