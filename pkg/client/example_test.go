package client_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tallyhq/tally/pkg/client"
	"github.com/tallyhq/tally/pkg/money"
)

// A model server checks the organization before a call and debits it after, with the call's id
// as the idempotency key. Concurrent Debit calls share DebitStream messages.
func Example() {
	ctx := context.Background()
	c, err := client.New(client.Config{
		Target: "dns:///ledger-headless.tally.svc:9091", // every replica, round-robin
		Token:  os.Getenv("TALLY_SERVICE_TOKEN"),
	})
	if err != nil {
		log.Fatal(err)
	}
	defer func() { _ = c.Close(ctx) }() // flushes what is not acknowledged yet

	az, err := c.Authorize(ctx, client.AuthorizeRequest{OrgID: "acme", Usage: &client.Usage{
		ModelID: "llama-3.1-8b-instruct", Quantities: map[string]string{"input_tokens": "1200", "output_tokens": "400"}}})
	if err != nil || !az.Allowed {
		return // fail closed: refuse the call
	}
	// ... run the model ...
	d, err := c.Debit(ctx, client.Debit{OrgID: "acme", IdempotencyKey: "call-7f3a",
		Usage: &client.Usage{ModelID: "llama-3.1-8b-instruct", Quantities: map[string]string{"input_tokens": "1200", "output_tokens": "350"}}})
	switch {
	case errors.Is(err, client.ErrUnavailable):
		// Retried already; keep the usage and send it again later with the same key.
	case err != nil:
		log.Printf("debit refused: %v", err)
	default:
		fmt.Println("charged", d.Amount, "balance", d.Balance)
	}
}

// A lease authorises and debits locally against a hold; the hold is captured for exactly what
// was drawn every CaptureInterval, and Close captures the rest.
func ExampleClient_Lease() {
	ctx := context.Background()
	c, err := client.New(client.Config{Target: "localhost:9091", Token: os.Getenv("TALLY_SERVICE_TOKEN")})
	if err != nil {
		log.Fatal(err)
	}
	defer func() { _ = c.Close(ctx) }()
	lease, err := c.Lease(ctx, client.LeaseConfig{OrgID: "acme", HoldAmount: 5 * money.NanosPerUnit, CaptureInterval: time.Second})
	if err != nil {
		log.Fatal(err)
	}
	const price = money.Nanos(2_500) // 0.0000025 USD per call
	if !lease.Authorize(price) {
		return // nothing held right now: refuse, or fall back to c.Authorize
	}
	if _, err := lease.Debit("call-7f3a", price); errors.Is(err, client.ErrLeaseExhausted) {
		return
	}
}

// Metrics go to the registry the caller names; tracing to the TracerProvider it passes.
func ExampleConfig_observability() {
	reg := prometheus.NewRegistry()
	c, err := client.New(client.Config{Target: "localhost:9091", Token: "token", Registerer: reg,
		Batch: client.BatchPolicy{MaxSize: 500, Linger: time.Millisecond}})
	if err != nil {
		log.Fatal(err)
	}
	defer func() { _ = c.Close(context.Background()) }()
	families, _ := reg.Gather()
	for _, f := range families { // retries and lease events appear with their first one
		fmt.Println(f.GetName())
	}
	// Output:
	// tally_client_call_duration_seconds
	// tally_client_calls_total
	// tally_client_stream_batch_size
	// tally_client_stream_in_flight
	// tally_client_stream_reconnects_total
	// tally_client_stream_resent_total
}

// A Debit needs its key before anything is sent: the key is what makes every retry safe.
func ExampleClient_Debit_key() {
	c, err := client.New(client.Config{Target: "localhost:9091", Token: "token"})
	if err != nil {
		log.Fatal(err)
	}
	defer func() { _ = c.Close(context.Background()) }()
	_, err = c.Debit(context.Background(), client.Debit{OrgID: "acme", Amount: money.Money{Nanos: 2_500, Currency: "USD"}})
	fmt.Println(err)
	// Output:
	// client: Debit needs an IdempotencyKey (one per charge, reused by every retry)
}
