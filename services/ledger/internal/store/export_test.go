package store

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/tallyhq/tally/services/ledger/internal/ledger"
)

// InsertEvents writes events in tx with the statement a ledger batch uses, for tests that hold
// a writer's transaction open between its events and its commit.
func InsertEvents(ctx context.Context, tx pgx.Tx, events []ledger.Event) error {
	b := &pgx.Batch{}
	if err := queueInsertEvents(b, events); err != nil {
		return err
	}
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("inserting events: %w", err)
	}
	return nil
}
