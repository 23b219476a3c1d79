package store

import (
	"context"
	"fmt"
	"math"
	"strings"

	"github.com/google/uuid"

	"github.com/tallyhq/tally/pkg/money"
	"github.com/tallyhq/tally/services/ledger/internal/ledger"
)

// postingColumns are the postings of a batch, column by column; entries is the journal entry of
// an organization's posting whose counter-leg is shared ("" for a self-balanced transaction).
type postingColumns struct {
	txs, entries     []string
	accounts, amount []int64
}

func (c *postingColumns) add(tx, entry string, account int64, amount money.Nanos) {
	c.txs, c.entries = append(c.txs, tx), append(c.entries, entry)
	c.accounts, c.amount = append(c.accounts, account), append(c.amount, int64(amount))
}

// sharedEntry is an open journal entry: the debits of a batch posting to one platform account,
// whose counter-amounts add up to sum.
type sharedEntry struct {
	id      string
	account int64
	sum     int64
	members int
}

// batchPostings lays out the postings of txs (their platform postings' ids already resolved) as
// journal entries (see the migration batch_journal_entries): the debits of the batch that post to
// one platform account share one entry and one platform posting carrying the sum of their
// counter-amounts; every other transaction is its own entry, as are debits alone on their
// platform account. A sum that would leave int64 closes the entry and opens another.
func batchPostings(txs []*ledger.Transaction) (postingColumns, error) {
	counts := map[int64]int{}
	for _, t := range txs {
		if _, plat, ok := debitLegs(t); ok {
			counts[plat.AccountID]++
		}
	}
	var c postingColumns
	open := map[int64]*sharedEntry{}
	closeEntry := func(e *sharedEntry) {
		if e.sum != 0 {
			c.add(e.id, "", e.account, money.Nanos(e.sum))
		}
	}
	for _, t := range txs {
		org, plat, ok := debitLegs(t)
		if !ok || counts[plat.AccountID] < 2 {
			for _, p := range t.Postings {
				c.add(t.ID, "", p.AccountID, p.Amount)
			}
			continue
		}
		e := open[plat.AccountID]
		if e != nil && !addFits(e.sum, int64(plat.Amount)) {
			closeEntry(e)
			e = nil
		}
		if e == nil {
			id, err := uuid.NewV7()
			if err != nil {
				return postingColumns{}, fmt.Errorf("naming a journal entry: %w", err)
			}
			e = &sharedEntry{id: id.String(), account: plat.AccountID}
			open[plat.AccountID] = e
		}
		e.sum += int64(plat.Amount)
		e.members++
		c.add(t.ID, e.id, org.AccountID, org.Amount)
	}
	for _, t := range txs {
		// In the order the accounts first appear, so the statement is deterministic.
		if _, plat, ok := debitLegs(t); ok {
			if e := open[plat.AccountID]; e != nil {
				closeEntry(e)
				delete(open, plat.AccountID)
			}
		}
	}
	return c, nil
}

// debitLegs returns the organization's and the platform's posting of a debit or capture made of
// exactly those two (a charge: the organization's balance goes down), the kinds whose platform
// leg a batch shares.
func debitLegs(t *ledger.Transaction) (org, plat ledger.Posting, ok bool) {
	if (t.Kind != ledger.TxDebit && t.Kind != ledger.TxCapture) || len(t.Postings) != 2 {
		return ledger.Posting{}, ledger.Posting{}, false
	}
	org, plat = t.Postings[0], t.Postings[1]
	if strings.HasPrefix(plat.Account, "org:") {
		org, plat = plat, org
	}
	if !strings.HasPrefix(org.Account, "org:") || !strings.HasPrefix(plat.Account, "platform:") ||
		org.AccountID == 0 || plat.AccountID == 0 || org.Amount >= 0 || plat.Amount != -org.Amount {
		return ledger.Posting{}, ledger.Posting{}, false
	}
	return org, plat, true
}

// addFits says whether a+b stays within int64 (b > 0: a debit's counter-amount).
func addFits(a, b int64) bool { return a <= math.MaxInt64-b }

// loadCounterLegs adds to each transaction whose organization posting shares a journal entry
// (entries: the entry of a posting, by transaction id) the counter-leg it has in that entry: the
// entry's platform account, with the posting's amount negated.
func loadCounterLegs(ctx context.Context, q querier, byID map[string]*ledger.Transaction, entries map[string]string) error {
	if len(entries) == 0 {
		return nil
	}
	ids := make([]string, 0, len(entries))
	seen := map[string]bool{}
	for _, e := range entries {
		if !seen[e] {
			seen[e] = true
			ids = append(ids, e)
		}
	}
	rows, err := q.Query(ctx, `SELECT p.transaction_id::text, p.account_id, a.name FROM postings p JOIN accounts a ON a.id = p.account_id
WHERE p.transaction_id = ANY($1::text[]::uuid[])`, ids)
	if err != nil {
		return fmt.Errorf("listing journal entries: %w", err)
	}
	defer rows.Close()
	legs := map[string]ledger.Posting{}
	for rows.Next() {
		var entry string
		var p ledger.Posting
		if err := rows.Scan(&entry, &p.AccountID, &p.Account); err != nil {
			return fmt.Errorf("scanning journal entry: %w", err)
		}
		legs[entry] = p
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("listing journal entries: %w", err)
	}
	for txID, entry := range entries {
		t, leg := byID[txID], legs[entry]
		if t == nil || len(t.Postings) != 1 || leg.Account == "" {
			return fmt.Errorf("transaction %s: journal entry %s has no platform posting", txID, entry)
		}
		leg.Amount = -t.Postings[0].Amount
		t.Postings = append(t.Postings, leg)
	}
	return nil
}
