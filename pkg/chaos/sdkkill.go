package chaos

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/tallyhq/tally/pkg/auth"
	"github.com/tallyhq/tally/pkg/chaos/sdkjournal"
)

// The sdk-kill scenario: a model backend — tally-sdk-load, a separate process debiting through
// pkg/client's DebitStream batching — is killed with SIGKILL mid-stream, twice, and started
// again on its journal each time; it first sends every debit it never saw acknowledged again,
// with the same key. A last run sends what the final kill left unacknowledged. Then
// PostgreSQL must hold every debit of the journal exactly once, each acknowledged one with the
// transaction the SDK answered, none that was never sent, and each organization's stored
// balance must be minus the sum of its debits (the suite's invariants check it equals its
// postings).

const (
	sdkLoadBinary = "tally-sdk-load"
	sdkKills      = 2
	sdkOrgs       = 4
	// sdkAcksBeforeKill is how many new acknowledgements each incarnation makes before it is
	// killed: the kill then lands while debits stream.
	sdkAcksBeforeKill = 300
)

// sdkLoad is the scenario's backend process and its journal.
type sdkLoad struct {
	r       *run
	bin     string
	journal string
	log     string
	token   string
}

func newSDKLoad(r *run) (*sdkLoad, error) {
	token, err := r.stack.Token(auth.Claims{Subject: "chaos-sdk-load", Roles: []auth.Role{auth.RoleService}})
	if err != nil {
		return nil, err
	}
	dir := r.stack.cfg.Dir
	return &sdkLoad{r: r, bin: filepath.Join(r.stack.binDir, sdkLoadBinary), token: token,
		journal: filepath.Join(dir, "sdk-"+r.tag+".journal"), log: filepath.Join(dir, "logs", "sdk-load-"+r.tag+".log")}, nil
}

func (l *sdkLoad) prefix() string { return "sdk-" + l.r.tag }

// command is one incarnation of the backend (extra: -replay).
func (l *sdkLoad) command(ctx context.Context, extra ...string) (*exec.Cmd, error) {
	out, err := os.OpenFile(l.log, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600) //nolint:gosec // the suite's own directory
	if err != nil {
		return nil, fmt.Errorf("opening the sdk load's log: %w", err)
	}
	args := append([]string{"-target", l.r.stack.Addr("ledger"), "-journal", l.journal, "-prefix", l.prefix(),
		"-orgs", fmt.Sprint(sdkOrgs)}, extra...)
	cmd := exec.CommandContext(ctx, l.bin, args...) //nolint:gosec // the suite's own binary
	cmd.Env = append(os.Environ(), "TALLY_SERVICE_TOKEN="+l.token)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.Cancel = func() error { return cmd.Process.Kill() }
	return cmd, nil
}

// killOne starts an incarnation, waits until it has sdkAcksBeforeKill new acknowledgements,
// kills it with SIGKILL and returns the debits it left unacknowledged.
func (l *sdkLoad) killOne(ctx context.Context) (int, error) {
	before, err := sdkjournal.Read(l.journal)
	if err != nil {
		return 0, err
	}
	cmd, err := l.command(ctx)
	if err != nil {
		return 0, err
	}
	if err := cmd.Start(); err != nil {
		return 0, fmt.Errorf("starting %s: %w", sdkLoadBinary, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	// kill ends the incarnation on a failed wait; its exit status tells nothing more.
	kill := func() error { _ = cmd.Process.Kill(); return <-exited }
	deadline := time.Now().Add(time.Minute)
	for {
		st, err := sdkjournal.Read(l.journal)
		if err != nil {
			_ = kill()
			return 0, err
		}
		if st.AckLines-before.AckLines >= sdkAcksBeforeKill {
			break
		}
		select {
		case err := <-exited:
			return 0, fmt.Errorf("%s exited before its kill (%w); see %s", sdkLoadBinary, err, l.log)
		default:
		}
		if time.Now().After(deadline) || !pause(ctx, 20*time.Millisecond) {
			_ = kill()
			return 0, fmt.Errorf("%s made %d acknowledgements in a minute, want %d; see %s", sdkLoadBinary, st.AckLines-before.AckLines, sdkAcksBeforeKill, l.log)
		}
	}
	if err := cmd.Process.Kill(); err != nil {
		return 0, fmt.Errorf("killing %s: %w", sdkLoadBinary, err)
	}
	if err := <-exited; err == nil {
		return 0, fmt.Errorf("%s exited on its own at its kill; see %s", sdkLoadBinary, l.log)
	}
	after, err := sdkjournal.Read(l.journal)
	if err != nil {
		return 0, err
	}
	return len(after.Unacknowledged()), nil
}

// replayAll runs the last incarnation: it sends the unacknowledged debits and exits.
func (l *sdkLoad) replayAll(ctx context.Context) error {
	cmd, err := l.command(ctx, "-replay")
	if err != nil {
		return err
	}
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s -replay: %w; see %s", sdkLoadBinary, err, l.log)
	}
	return nil
}

func injectSDKKill(ctx context.Context, r *run) error {
	l, err := newSDKLoad(r)
	if err != nil {
		return err
	}
	var inFlight []int
	for range sdkKills {
		n, err := l.killOne(ctx)
		if err != nil {
			return err
		}
		inFlight = append(inFlight, n)
		r.note("sdk: %s killed with %d debits sent and not acknowledged", sdkLoadBinary, n)
	}
	r.lift()
	if err := l.replayAll(ctx); err != nil {
		return err
	}
	st, err := sdkjournal.Read(l.journal)
	if err != nil {
		return err
	}
	replayed := 0
	for _, a := range st.Acks {
		if a.Replayed {
			replayed++
		}
	}
	if sum(inFlight) == 0 {
		return fmt.Errorf("sdk: %d kills left no debit in flight (%v)", sdkKills, inFlight)
	}
	r.observe("%s killed %d times mid-stream (%v debits unacknowledged at the kills); %d debits journaled, %d starts, every one acknowledged in the end (%d as replays of a commit the killed process never saw)",
		sdkLoadBinary, sdkKills, inFlight, len(st.Sent), st.Starts, replayed)
	return r.checkSDKJournal(ctx, l.prefix(), st)
}

func sum(xs []int) int {
	n := 0
	for _, x := range xs {
		n += x
	}
	return n
}

// checkSDKJournal checks the journal's debits in PostgreSQL: each exactly once, with its amount
// and organization and the transaction the SDK acknowledged it with; none never sent; each
// organization's stored balance minus the sum of its debits.
func (r *run) checkSDKJournal(ctx context.Context, prefix string, st sdkjournal.State) error {
	if st.Torn > 0 {
		r.fail(fmt.Errorf("sdk: %d torn journal lines", st.Torn))
	}
	sent := map[string]sdkjournal.Debit{}
	want := map[string]int64{}
	for _, d := range st.Sent {
		sent[d.Key] = d
		want[d.Org] -= int64(d.Amount)
	}
	counts, err := r.checkSDKTransactions(ctx, prefix, sent, st.Acks)
	if err != nil {
		return err
	}
	var lost, doubled int
	for k := range sent {
		switch counts[k] {
		case 0:
			lost++
		case 1:
		default:
			doubled++
		}
		if _, ok := st.Acks[k]; !ok {
			r.fail(fmt.Errorf("sdk: debit %s never acknowledged", k))
		}
	}
	if lost+doubled > 0 {
		r.fail(fmt.Errorf("sdk: %d journaled debits lost, %d doubled", lost, doubled))
	}
	if err := r.checkSDKBalances(ctx, want); err != nil {
		return err
	}
	r.note("sdk: %d debits checked in PostgreSQL: %d lost, %d doubled", len(sent), lost, doubled)
	return nil
}

// checkSDKTransactions compares the transactions of the prefix's organizations with the journal
// and returns how many each key has.
func (r *run) checkSDKTransactions(ctx context.Context, prefix string, sent map[string]sdkjournal.Debit, acks map[string]sdkjournal.Ack) (map[string]int, error) {
	cctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	rows, err := r.stack.DB.Query(cctx, `SELECT id::text, org_id, amount, idempotency_key FROM ledger.transactions WHERE org_id LIKE $1`, prefix+"-%")
	if err != nil {
		return nil, fmt.Errorf("reading the sdk debits: %w", err)
	}
	defer rows.Close()
	counts := map[string]int{}
	for rows.Next() {
		var id, org, key string
		var amount int64
		if err := rows.Scan(&id, &org, &amount, &key); err != nil {
			return nil, fmt.Errorf("reading the sdk debits: %w", err)
		}
		counts[key]++
		d, ok := sent[key]
		ack, acked := acks[key]
		switch {
		case !ok:
			r.fail(fmt.Errorf("sdk: debit %s in the ledger was never sent", key))
		case int64(d.Amount) != -amount || d.Org != org:
			r.fail(fmt.Errorf("sdk: debit %s is %s %d, sent %s %d", key, org, amount, d.Org, d.Amount))
		case acked && ack.Transaction != id:
			r.fail(fmt.Errorf("sdk: debit %s is transaction %s, acknowledged as %s", key, id, ack.Transaction))
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading the sdk debits: %w", err)
	}
	return counts, nil
}

// checkSDKBalances compares each organization's stored balance with minus its debits.
func (r *run) checkSDKBalances(ctx context.Context, want map[string]int64) error {
	for org, b := range want {
		cctx, cancel := context.WithTimeout(ctx, queryTimeout)
		var balance int64
		err := r.stack.DB.QueryRow(cctx, `SELECT balance::bigint FROM ledger.accounts WHERE kind = 'org' AND org_id = $1`, org).Scan(&balance)
		cancel()
		if err != nil {
			return fmt.Errorf("reading the balance of %s: %w", org, err)
		}
		if balance != b {
			r.fail(fmt.Errorf("sdk: %s's stored balance is %d, its debits sum to %d", org, balance, b))
		}
	}
	if len(want) == 0 {
		return errors.New("sdk: the journal holds no debit")
	}
	return nil
}
