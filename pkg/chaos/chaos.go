// Package chaos is tally's fault-injection suite (make chaos; its short form runs in make test).
//
// It runs the real service binaries as separate processes (supervised, as in production, by
// package localstack) over PostgreSQL with fsync on, Redis, stripe-mock behind a fault proxy and
// mailpit, drives concurrent debits with unique keys, Authorize calls, Stripe top-ups, refunds
// and emails, injects one fault per scenario — kill -9 of the ledger, Redis killed, paused and
// restored from an older snapshot, PostgreSQL crashed, payments and notifications killed
// mid-work, SMTP stalled, Stripe errors and outages, an expired service token — and then checks
// in PostgreSQL that nothing acknowledged was lost, nothing was doubled, every invariant of the
// ledger holds and no Authorize was allowed above what the organization could afford.
package chaos

import (
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// Options configure a run of the suite.
type Options struct {
	// Short runs the short suite with its lighter, rate-limited traffic.
	Short bool
	// Only runs the named scenarios (in the suite's order); empty runs the suite.
	Only []string
	// Stack configures the platform.
	Stack StackConfig
	// Load and Timing override the suite's defaults when set.
	Load   *LoadConfig
	Timing *Timing
	// Grace is how long an acknowledged debit may take to reach the cache that Authorize reads
	// (default 1s): Authorize may miss debits acknowledged less than that before it.
	Grace time.Duration
	// Out receives the progress and the table; nil discards them.
	Out io.Writer
}

// DefaultLoad returns the traffic of the full suite, or of the short one.
func DefaultLoad(short bool) LoadConfig {
	if short {
		return LoadConfig{DebitWorkers: 24, AuthorizeWorkers: 4, MaxDebits: 15000, AuthorizeRate: 40,
			RetryStorm: 0.05, Orgs: 8, TopUpWorkers: 2, TopUpRate: 3, MaxTopUps: 60, EmailCredits: 5}
	}
	return LoadConfig{DebitWorkers: 24, AuthorizeWorkers: 4, MaxDebits: 60000, AuthorizeRate: 100,
		RetryStorm: 0.05, Orgs: 16, TopUpWorkers: 2, TopUpRate: 5, MaxTopUps: 200, EmailCredits: 10}
}

// DefaultTiming returns the phases of the full suite, or of the short one.
func DefaultTiming(short bool) Timing {
	if short {
		return Timing{Warm: 3 * time.Second, Recover: 3 * time.Second, Drain: 30 * time.Second}
	}
	return Timing{Warm: 5 * time.Second, Recover: 5 * time.Second, Drain: 45 * time.Second}
}

// Result is the outcome of one scenario.
type Result struct {
	Scenario string
	Fault    string
	// Err is set when the scenario could not be run or checked.
	Err error
	// Acked debits; Refused ones by final code; Unresolved ones whose outcome stayed unknown.
	Acked      int
	Refused    map[string]int
	Unresolved int
	// Failed counts the failed debit attempts by code (retried with the same key).
	Failed map[string]int
	// The violations, by the table's columns, and examples of them.
	Lost, Doubled, FailOpen, Broken int
	Violations                      []string
	// Failures are reasons the scenario fails other than violations (a fault without effect).
	Failures []string
	// Recovery is from the fault's end to the first success of the scenario's signal; negative
	// when there was none.
	Recovery time.Duration
	// Debits per second acknowledged before and during the fault; Authorize p99 likewise.
	RateBefore, RateDuring                 float64
	AuthorizeP99Before, AuthorizeP99During time.Duration
	Authorizes                             int
	AuthorizeFailed                        map[string]int
	TopUps                                 int
	Webhooks                               map[int]int
	CheckoutFailed                         map[string]int
	Notes                                  []string
	Duration                               time.Duration
	// Hosts is what the hosts topology's scenarios add (nil on loopback).
	Hosts *HostStats
}

// HostStats is what a scenario of the hosts topology counts beyond the debits.
type HostStats struct {
	// EmailsExpected paid credits to subscribed organizations, Emails queued for them, and
	// EmailsResent of those that reached the mailbox more than once (same Message-ID).
	EmailsExpected, Emails, EmailsResent int
	// Passes of reconciliation claimed (one a second across the replicas), PassesListed
	// listings at Stripe, PassReplicas replicas that ran passes.
	Passes, PassesListed, PassReplicas int
	// Rentals checked, and RentalPeriodsDuring the periods charged while the fault lasted.
	Rentals, RentalPeriodsDuring int
	// Failover is what took over (the notifications lease, a Redis replica, the standby) and
	// FailoverTook how long after the fault.
	Failover     string
	FailoverTook time.Duration
	// Moves are how long each MoveOrganization of shard-move took.
	Moves []time.Duration
}

// OK reports whether the scenario passed.
func (r Result) OK() bool {
	return r.Err == nil && r.Lost == 0 && r.Doubled == 0 && r.FailOpen == 0 && r.Broken == 0 && len(r.Failures) == 0
}

// Report is the outcome of a run.
type Report struct {
	Results []Result
}

// OK reports whether every scenario passed.
func (r Report) OK() bool {
	for _, res := range r.Results {
		if !res.OK() {
			return false
		}
	}
	return len(r.Results) > 0
}

// Select returns the scenarios of a run: the short suite or the full one, or the named ones.
func Select(short bool, only []string) ([]Scenario, error) {
	return selectFrom(Scenarios(), short, only)
}

// selectFrom returns the scenarios of a run from all.
func selectFrom(all []Scenario, short bool, only []string) ([]Scenario, error) {
	if len(only) == 0 {
		var out []Scenario
		for _, sc := range all {
			if sc.Short || !short {
				out = append(out, sc)
			}
		}
		return out, nil
	}
	var out []Scenario
	for _, name := range only {
		i := slices.IndexFunc(all, func(sc Scenario) bool { return sc.Name == name })
		if i < 0 {
			var names []string
			for _, sc := range all {
				names = append(names, sc.Name)
			}
			return nil, fmt.Errorf("unknown scenario %q (scenarios: %s)", name, strings.Join(names, ", "))
		}
		out = append(out, all[i])
	}
	return out, nil
}

// Run starts the platform, runs the scenarios one after the other against it and prints a row
// per scenario as it completes, then the table. The error is about the run itself; violations
// are in the report.
func Run(ctx context.Context, opts Options) (Report, error) {
	out := opts.Out
	if out == nil {
		out = io.Discard
	}
	all := Scenarios()
	if opts.Stack.Hosts > 0 {
		all = HostScenarios()
	}
	scenarios, err := selectFrom(all, opts.Short, opts.Only)
	if err != nil {
		return Report{}, err
	}
	load := DefaultLoad(opts.Short)
	if opts.Load != nil {
		load = *opts.Load
	}
	timing := DefaultTiming(opts.Short)
	if opts.Timing != nil {
		timing = *opts.Timing
	}
	grace := opts.Grace
	if grace <= 0 {
		grace = time.Second
	}
	stackCfg := opts.Stack
	if stackCfg.Progress == nil {
		stackCfg.Progress = out
	}
	stack, err := StartStack(ctx, stackCfg)
	if err != nil {
		return Report{}, err
	}
	defer stack.Stop(context.WithoutCancel(ctx))

	var rep Report
	for i, sc := range scenarios {
		fmt.Fprintf(out, "chaos: [%d/%d] %s — %s\n", i+1, len(scenarios), sc.Name, sc.Fault)
		res := execute(ctx, stack, sc, fmt.Sprintf("s%02d", i+1), opts.Short, load, timing, grace)
		rep.Results = append(rep.Results, res)
		printDetails(out, res)
		if ctx.Err() != nil {
			break
		}
		// The next scenario starts from a whole platform.
		if err := stack.Heal(ctx); err != nil {
			return rep, fmt.Errorf("restoring the platform after %s: %w", sc.Name, err)
		}
	}
	fmt.Fprintln(out)
	PrintTable(out, rep)
	return rep, nil
}

// PrintTable prints one row per scenario.
func PrintTable(w io.Writer, rep Report) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "scenario\tacked\tfailed by code\tlost\tdoubled\tfail-open\tbroken\trecovery\tdebits/s before→during\tAuthorize p99 before→during\tresult")
	for _, r := range rep.Results {
		verdict := "ok"
		if !r.OK() {
			verdict = "FAIL"
		}
		recovery := "-"
		if r.Recovery >= 0 {
			recovery = fmt.Sprintf("%.2fs", r.Recovery.Seconds())
		}
		if r.Err != nil {
			fmt.Fprintf(tw, "%s\t-\t-\t-\t-\t-\t-\t-\t-\t-\tERROR\n", r.Scenario)
			continue
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%d\t%d\t%d\t%d\t%s\t%.0f→%.0f\t%s→%s\t%s\n", r.Scenario, r.Acked, codeCounts(r.Failed),
			r.Lost, r.Doubled, r.FailOpen, r.Broken, recovery, r.RateBefore, r.RateDuring,
			roundDur(r.AuthorizeP99Before), roundDur(r.AuthorizeP99During), verdict)
	}
	_ = tw.Flush()
	printHostTable(w, rep)
	if rep.OK() {
		fmt.Fprintln(w, "chaos: PASS — nothing lost, doubled or allowed above the balance")
	} else {
		fmt.Fprintln(w, "chaos: FAIL")
	}
}

// printHostTable prints, for the hosts topology, a row per scenario with its emails,
// reconciliation passes, rentals and failover.
func printHostTable(w io.Writer, rep Report) {
	if !slices.ContainsFunc(rep.Results, func(r Result) bool { return r.Hosts != nil }) {
		return
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "scenario\tacked\tlost\tdoubled\tfail-open\temails queued/paid (resent)\treconciliation passes (Stripe lists, replicas)\trental periods during fault\tfailover\trecovery\tresult")
	for _, r := range rep.Results {
		h := r.Hosts
		if h == nil || r.Err != nil {
			fmt.Fprintf(tw, "%s\t-\t-\t-\t-\t-\t-\t-\t-\t-\tERROR\n", r.Scenario)
			continue
		}
		verdict, recovery, failover := "ok", "-", "-"
		if !r.OK() {
			verdict = "FAIL"
		}
		if r.Recovery >= 0 {
			recovery = fmt.Sprintf("%.2fs", r.Recovery.Seconds())
		}
		if h.Failover != "" {
			failover = fmt.Sprintf("%s %.2fs", h.Failover, h.FailoverTook.Seconds())
		}
		if len(h.Moves) > 0 {
			failover = fmt.Sprintf("%d moves, longest %.2fs", len(h.Moves), slices.Max(h.Moves).Seconds())
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d/%d (%d)\t%d (%d, %d)\t%d\t%s\t%s\t%s\n", r.Scenario, r.Acked, r.Lost, r.Doubled, r.FailOpen,
			h.Emails, h.EmailsExpected, h.EmailsResent, h.Passes, h.PassesListed, h.PassReplicas, h.RentalPeriodsDuring, failover, recovery, verdict)
	}
	_ = tw.Flush()
}

// printDetails prints what a scenario found beyond its row.
func printDetails(w io.Writer, r Result) {
	if r.Err != nil {
		fmt.Fprintf(w, "  ERROR: %v\n", r.Err)
		return
	}
	fmt.Fprintf(w, "  %d debits acknowledged, refused %s, unresolved %d; %d Authorize calls (failed %s)", r.Acked,
		codeCounts(r.Refused), r.Unresolved, r.Authorizes, codeCounts(r.AuthorizeFailed))
	if r.TopUps > 0 {
		fmt.Fprintf(w, "; %d top-ups (checkout failed %s, webhook answers %v)", r.TopUps, codeCounts(r.CheckoutFailed), r.Webhooks)
	}
	fmt.Fprintf(w, "; %.0fs\n", r.Duration.Seconds())
	for _, n := range r.Notes {
		fmt.Fprintln(w, "  note: "+n)
	}
	for _, f := range r.Failures {
		fmt.Fprintln(w, "  FAIL: "+f)
	}
	for _, v := range r.Violations {
		fmt.Fprintln(w, "  VIOLATION: "+v)
	}
}

func codeCounts(m map[string]int) string {
	if len(m) == 0 {
		return "-"
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%s:%d", k, m[k]))
	}
	return strings.Join(parts, " ")
}

func roundDur(d time.Duration) string {
	if d == 0 {
		return "-"
	}
	switch {
	case d < time.Millisecond:
		return d.Round(time.Microsecond).String()
	case d < time.Second:
		return d.Round(100 * time.Microsecond).String()
	}
	return d.Round(10 * time.Millisecond).String()
}
