// Command tally-sdk-load is the model backend of the fault suite's sdk-kill scenario: a separate
// process that streams debits through pkg/client and keeps a journal of them, so that it can be
// killed with SIGKILL at any moment and, started again on the same journal, send every debit it
// never saw acknowledged again with the same idempotency key.
//
// The journal has one line per event, each written with a single write(2) to a file opened with
// O_APPEND before (a send) or after (an acknowledgement) the call it records:
//
//	s <key> <org> <nanos>    a debit about to be sent
//	a <key> <transaction>    the SDK acknowledged it (committed, or replayed when "r" follows)
//
// A SIGKILL cannot tear such a write (the kernel finishes it or never starts it), and the page
// cache outlives the process: a debit is only ever sent once its line is in the journal, and
// the fault suite reads the acknowledgements from it.
//
// Flags: -target (the ledger), -journal, -orgs (organizations named <prefix>-NN), -workers.
// With -replay it sends only the unacknowledged debits, until each is acknowledged, and exits.
// The service token is TALLY_SERVICE_TOKEN.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/tallyhq/tally/pkg/chaos/sdkjournal"
	"github.com/tallyhq/tally/pkg/client"
	"github.com/tallyhq/tally/pkg/money"
)

func main() {
	cfg := config{}
	flag.StringVar(&cfg.target, "target", "localhost:9091", "the ledger's gRPC address")
	flag.StringVar(&cfg.journal, "journal", "", "the journal file (created when missing; required)")
	flag.StringVar(&cfg.prefix, "prefix", "sdk", "organizations are <prefix>-00, <prefix>-01, …")
	flag.IntVar(&cfg.orgs, "orgs", 4, "organizations debited")
	flag.IntVar(&cfg.workers, "workers", 16, "concurrent callers of Debit")
	flag.DurationVar(&cfg.pause, "pause", 2*time.Millisecond, "each caller's pause between its debits")
	flag.BoolVar(&cfg.replay, "replay", false, "send only the unacknowledged debits of the journal, then exit")
	flag.DurationVar(&cfg.replayFor, "replay-for", time.Minute, "how long -replay (and the replay at start) may take")
	flag.Parse()
	cfg.token = os.Getenv("TALLY_SERVICE_TOKEN")
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, cfg); err != nil {
		fmt.Fprintln(os.Stderr, "tally-sdk-load:", err)
		os.Exit(1)
	}
}

type config struct {
	target, journal, prefix, token string
	orgs, workers                  int
	pause, replayFor               time.Duration
	replay                         bool
}

func run(ctx context.Context, cfg config) error {
	if cfg.journal == "" || cfg.orgs < 1 || cfg.workers < 1 {
		return errors.New("-journal is required, -orgs and -workers must be positive")
	}
	state, err := sdkjournal.Read(cfg.journal)
	if err != nil {
		return err
	}
	j, err := sdkjournal.Open(cfg.journal)
	if err != nil {
		return err
	}
	defer func() { _ = j.Close() }()
	c, err := client.New(client.Config{Target: cfg.target, Token: cfg.token})
	if err != nil {
		return err
	}
	defer func() { _ = c.Close(context.WithoutCancel(ctx)) }()
	l := &load{cfg: cfg, c: c, j: j, incarnation: state.Starts}
	if err := j.Start(); err != nil {
		return err
	}
	pending := state.Unacknowledged()
	fmt.Printf("incarnation %d: %d debits in the journal, %d unacknowledged, replaying them\n", state.Starts, len(state.Sent), len(pending))
	if err := l.replay(ctx, pending); err != nil {
		return err
	}
	if cfg.replay {
		fmt.Printf("replayed %d debits, every debit of the journal acknowledged\n", len(pending))
		return nil
	}
	l.stream(ctx)
	return nil
}

// load sends debits through the SDK and journals them.
type load struct {
	cfg         config
	c           *client.Client
	j           *sdkjournal.Writer
	incarnation int
	seq         atomic.Int64
}

// replay sends the debits again, with their keys, until each is acknowledged or replayFor passes.
func (l *load) replay(ctx context.Context, debits []sdkjournal.Debit) error {
	rctx, cancel := context.WithTimeout(ctx, l.cfg.replayFor)
	defer cancel()
	errs := make([]error, len(debits))
	var wg sync.WaitGroup
	for i, d := range debits {
		wg.Go(func() {
			for {
				if errs[i] = l.send(rctx, d); errs[i] == nil || rctx.Err() != nil {
					return
				}
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// stream makes new debits until ctx is done (SIGTERM; the fault suite sends SIGKILL instead).
func (l *load) stream(ctx context.Context) {
	var wg sync.WaitGroup
	for w := range l.cfg.workers {
		wg.Go(func() {
			for ctx.Err() == nil {
				n := l.seq.Add(1)
				d := sdkjournal.Debit{
					Key:    fmt.Sprintf("%s-i%d-%07d", l.cfg.prefix, l.incarnation, n),
					Org:    fmt.Sprintf("%s-%02d", l.cfg.prefix, int(n)%l.cfg.orgs),
					Amount: money.Nanos(n%997+1) * 1000,
				}
				if err := l.j.Sent(d); err != nil {
					fmt.Fprintln(os.Stderr, "tally-sdk-load: journal:", err)
					return
				}
				if err := l.send(ctx, d); err != nil && ctx.Err() == nil {
					// Left unacknowledged in the journal: the next start sends it again.
					fmt.Fprintf(os.Stderr, "tally-sdk-load: worker %d: %v\n", w, err)
				}
				select {
				case <-ctx.Done():
				case <-time.After(l.cfg.pause):
				}
			}
		})
	}
	wg.Wait()
}

// send debits d once through the SDK (which retries outages with the same key) and journals
// the acknowledgement.
func (l *load) send(ctx context.Context, d sdkjournal.Debit) error {
	res, err := l.c.Debit(ctx, client.Debit{OrgID: d.Org, Amount: money.Money{Nanos: d.Amount, Currency: "USD"},
		IdempotencyKey: d.Key, Description: "sdk-kill"})
	if err != nil {
		return fmt.Errorf("debit %s: %w", d.Key, err)
	}
	return l.j.Acknowledged(d.Key, res.TransactionID, res.Replayed)
}
