package chaos

import (
	"bytes"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

// testLog writes each line to the test log as it completes.
type testLog struct {
	t   *testing.T
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *testLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf.Write(p)
	for {
		line, err := l.buf.ReadString('\n')
		if err != nil {
			l.buf.WriteString(line)
			return len(p), nil
		}
		l.t.Log(strings.TrimRight(line, "\n"))
	}
}

// TestShortSuite is the short form of make chaos, run by make test: it builds the services,
// starts the whole platform as separate processes and runs the short scenarios against it. Every
// scenario must end with nothing lost, doubled or allowed above the balance.
func TestShortSuite(t *testing.T) {
	if testing.Short() {
		t.Skip("the fault-injection suite runs the whole platform; skipped with -short")
	}
	rep, err := Run(t.Context(), Options{Short: true, Stack: StackConfig{Dir: t.TempDir()}, Out: &testLog{t: t}})
	requirePassed(t, rep, err)
}

// requirePassed requires a run whose every scenario found nothing lost, doubled, allowed above
// the balance or broken, and acknowledged debits.
func requirePassed(t *testing.T, rep Report, err error) {
	t.Helper()
	require.NoError(t, err)
	require.NotEmpty(t, rep.Results)
	for _, res := range rep.Results {
		t.Run(res.Scenario, func(t *testing.T) {
			require.NoError(t, res.Err)
			require.Empty(t, res.Failures)
			require.Zero(t, res.Lost, "lost: %v", res.Violations)
			require.Zero(t, res.Doubled, "doubled: %v", res.Violations)
			require.Zero(t, res.FailOpen, "fail-open: %v", res.Violations)
			require.Zero(t, res.Broken, "broken: %v", res.Violations)
			require.Positive(t, res.Acked, "the scenario acknowledged no debit at all")
		})
	}
}

// An email claimed by a killed notifications replica must become claimable again, and be sent,
// within the wait for the emails: the lease the suite sets (not the service's 2m default) bounds
// it, and the service refuses a lease under twice the SMTP timeout.
func TestEmailWaitCoversTheClaimLease(t *testing.T) {
	require.GreaterOrEqual(t, emailClaimLease, 2*emailSMTPTimeout)
	require.Greater(t, emailSettleBound, emailClaimLease+emailRetryMax)
	for _, short := range []bool{true, false} {
		require.LessOrEqual(t, emailSettleBound, DefaultTiming(short).Drain, "the drain covers the bound (short %v)", short)
	}
}
