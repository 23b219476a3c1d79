// Command tally-chaos is `make chaos`: tally's fault-injection suite. It builds the services,
// starts PostgreSQL (fsync on), Redis, stripe-mock, mailpit and every service as separate
// processes under .data/chaos/, injects one fault per scenario under concurrent traffic, checks
// in PostgreSQL that nothing acknowledged was lost or doubled and that no Authorize failed open,
// and prints a table. With -hosts 3 (make scale-test, root needed) it runs a replica of every
// service on each of three network-namespace hosts and the host scenarios instead (kill, partition,
// Redis Cluster failover, PostgreSQL promotion).
// It exits 1 when a scenario fails, 2 when the suite cannot run.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/tallyhq/tally/pkg/chaos"
	"github.com/tallyhq/tally/pkg/localstack"
)

func main() {
	short := flag.Bool("short", false, "run the short suite (the one make test runs)")
	only := flag.String("scenarios", "", "comma-separated scenarios to run (default: the whole suite); -list shows them")
	list := flag.Bool("list", false, "list the scenarios and exit")
	dir := flag.String("dir", "", "working directory of the run (default .data/chaos/<time>; kept when a scenario fails or with -keep)")
	keep := flag.Bool("keep", false, "keep the working directory (logs, data) after a passing run")
	bin := flag.String("bin", "", "directory of prebuilt service binaries (default: build them into the working directory)")
	grace := flag.Duration("grace", time.Second, "how long an acknowledged debit may take to reach the cache Authorize reads")
	rate := flag.Float64("rate", -1, "bound on debits per second (0: unbounded; default: the suite's)")
	verbose := flag.Bool("v", false, "log the servers' lifecycle")
	async := flag.Bool("async-standby", false, "with -hosts: an asynchronous PostgreSQL standby (postgres-promotion then shows what it loses)")
	hosts := flag.Int("hosts", 0, "run a replica of every service on each of N hosts (network namespaces; needs root) and the host scenarios (make scale-test)")
	flag.Parse()

	if *list {
		scs := chaos.Scenarios()
		if *hosts > 0 {
			scs = chaos.HostScenarios()
		}
		for _, sc := range scs {
			mark := " "
			if sc.Short {
				mark = "s"
			}
			fmt.Printf("%s %-28s %s\n", mark, sc.Name, sc.Fault)
		}
		fmt.Println("(s: in the short suite)")
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	code, err := run(ctx, *short, *only, *dir, *keep, *bin, *grace, *rate, *verbose, *hosts, *async)
	if err != nil {
		fmt.Fprintln(os.Stderr, "tally-chaos:", err)
	}
	os.Exit(code)
}

func run(ctx context.Context, short bool, only, dir string, keep bool, bin string, grace time.Duration, rate float64, verbose bool, hosts int,
	async bool) (int, error) {
	if dir == "" {
		dir = filepath.Join(filepath.Dir(localstack.BinDir()), ".data", "chaos", time.Now().Format("20060102-150405"))
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return 2, err
	}
	var names []string
	for n := range strings.SplitSeq(only, ",") {
		if n = strings.TrimSpace(n); n != "" {
			names = append(names, n)
		}
	}
	opts := chaos.Options{Short: short, Only: names, Grace: grace, Out: os.Stdout,
		Stack: chaos.StackConfig{Dir: dir, BinDir: bin, Hosts: hosts, AsyncStandby: async}}
	if rate >= 0 {
		load := chaos.DefaultLoad(short)
		load.DebitRate = rate
		opts.Load = &load
	}
	if verbose {
		opts.Stack.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	start := time.Now()
	rep, err := chaos.Run(ctx, opts)
	took := time.Since(start).Round(time.Second)
	switch {
	case err != nil:
		fmt.Printf("chaos: could not run (%s); logs and data in %s\n", took, dir)
		return 2, err
	case !rep.OK():
		fmt.Printf("chaos: failed in %s; logs and data in %s\n", took, dir)
		return 1, nil
	case keep:
		fmt.Printf("chaos: passed in %s; logs and data in %s\n", took, dir)
		return 0, nil
	}
	fmt.Printf("chaos: passed in %s\n", took)
	if err := os.RemoveAll(dir); err != nil {
		return 0, fmt.Errorf("removing %s: %w", dir, err)
	}
	return 0, nil
}
