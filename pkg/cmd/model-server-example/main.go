// Command model-server-example is the README's "Calling tally from a model server": a model
// server's calls to the ledger through pkg/client, against `make run`.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/tallyhq/tally/pkg/client"
	"github.com/tallyhq/tally/pkg/money"
)

func main() {
	if err := run(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, "model-server-example:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context) error {
	target := os.Getenv("TALLY_LEDGER_ADDR") // dns:///ledger-headless:9091 balances over every replica
	if target == "" {
		target = "localhost:9091" // make run
	}
	c, err := client.New(client.Config{Target: target, Token: os.Getenv("TALLY_SERVICE_TOKEN")})
	if err != nil {
		return err
	}
	defer func() { _ = c.Close(ctx) }() // flushes the debits not acknowledged yet

	// Before the call: can acme afford it? (the ledger's Redis path)
	usage := &client.Usage{ModelID: "llama-3.1-8b-instruct", Quantities: map[string]string{"input_tokens": "1200", "output_tokens": "350"}}
	az, err := c.Authorize(ctx, client.AuthorizeRequest{OrgID: "acme", Usage: usage})
	if err != nil {
		return err
	}
	fmt.Printf("authorized: %v (call %s, available %s)\n", az.Allowed, az.Amount, az.Available)

	// After the call: debit its usage, keyed by the call's id. Concurrent debits share
	// DebitStream messages; each Debit returns once its debit is committed.
	run := time.Now().UnixNano()
	var wg sync.WaitGroup
	for i := range 100 {
		wg.Go(func() {
			_, err := c.Debit(ctx, client.Debit{OrgID: "acme", Usage: usage, IdempotencyKey: fmt.Sprintf("example-%d-%d", run, i)})
			if err != nil {
				fmt.Println("debit failed:", err)
			}
		})
	}
	wg.Wait()
	d, err := c.Debit(ctx, client.Debit{OrgID: "acme", Usage: usage, IdempotencyKey: fmt.Sprintf("example-%d-0", run)})
	if err != nil {
		return err
	}
	fmt.Printf("101st debit, same key as the first: replayed %v, charged %s, balance %s\n", d.Replayed, d.Amount, d.Balance)

	// A credit lease: a 1 USD hold drawn down locally, captured every second.
	lease, err := c.Lease(ctx, client.LeaseConfig{OrgID: "acme", HoldAmount: money.NanosPerUnit})
	if err != nil {
		return err
	}
	const price = money.Nanos(2_500_000) // 0.0025 USD per call
	served := 0
	for i := range 1000 {
		if !lease.Authorize(price) {
			break // nothing held: acme has no credits available
		}
		if _, err := lease.Debit(fmt.Sprintf("lease-call-%d-%d", run, i), price); errors.Is(err, client.ErrLeaseExhausted) {
			break
		}
		served++
	}
	if err := lease.Close(ctx); err != nil { // captures exactly what was drawn
		return err
	}
	fmt.Printf("lease: %d calls served locally, %s captured\n", served, money.Money{Nanos: lease.Stats().Captured, Currency: "USD"})
	return nil
}
