// Package sdkjournal is the journal of tally-sdk-load, the process the sdk-kill fault scenario
// kills: the debits it sent and those the SDK acknowledged, one line per event, each written
// with one write(2) on a file opened with O_APPEND, so that a SIGKILL leaves whole lines only.
package sdkjournal

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"sync"

	"github.com/tallyhq/tally/pkg/money"
)

// Debit is one debit the load sent: its idempotency key, organization and amount.
type Debit struct {
	Key    string
	Org    string
	Amount money.Nanos
}

// Ack is the acknowledgement of a debit: its transaction, and whether the ledger answered it
// as a replay of an earlier commit.
type Ack struct {
	Transaction string
	Replayed    bool
}

// State is what a journal holds.
type State struct {
	// Starts counts the processes that opened the journal.
	Starts int
	// Sent is every debit sent, in order; Acks the acknowledgements by key, each key's last.
	Sent []Debit
	Acks map[string]Ack
	// AckLines counts the acknowledgement lines (a key replayed after a kill has two).
	AckLines int
	// Torn counts unreadable lines (none are expected: see the package comment).
	Torn int
}

// Unacknowledged returns the debits sent and not acknowledged, in the order they were sent.
func (s State) Unacknowledged() []Debit {
	var out []Debit
	for _, d := range s.Sent {
		if _, ok := s.Acks[d.Key]; !ok {
			out = append(out, d)
		}
	}
	return out
}

// Read reads the journal at path; a missing file is an empty journal.
func Read(path string) (State, error) {
	st := State{Acks: map[string]Ack{}}
	f, err := os.Open(path) //nolint:gosec // the operator's -journal flag
	if errors.Is(err, fs.ErrNotExist) {
		return st, nil
	}
	if err != nil {
		return st, fmt.Errorf("opening the journal: %w", err)
	}
	defer func() { _ = f.Close() }()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		st.parse(strings.Fields(sc.Text()))
	}
	if err := sc.Err(); err != nil {
		return st, fmt.Errorf("reading the journal: %w", err)
	}
	return st, nil
}

func (s *State) parse(f []string) {
	switch {
	case len(f) == 1 && f[0] == "start":
		s.Starts++
	case len(f) == 4 && f[0] == "s":
		n, err := strconv.ParseInt(f[3], 10, 64)
		if err != nil {
			s.Torn++
			return
		}
		s.Sent = append(s.Sent, Debit{Key: f[1], Org: f[2], Amount: money.Nanos(n)})
	case (len(f) == 3 || len(f) == 4) && f[0] == "a":
		s.Acks[f[1]] = Ack{Transaction: f[2], Replayed: len(f) == 4 && f[3] == "r"}
		s.AckLines++
	default:
		s.Torn++
	}
}

// Writer appends to a journal; safe for concurrent use.
type Writer struct {
	mu sync.Mutex
	f  *os.File
}

// Open opens the journal at path for appending, creating it when missing.
func Open(path string) (*Writer, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600) //nolint:gosec // the operator's -journal flag
	if err != nil {
		return nil, fmt.Errorf("opening the journal: %w", err)
	}
	return &Writer{f: f}, nil
}

// Start records that a process opened the journal.
func (w *Writer) Start() error { return w.line("start\n") }

// Sent records d before it is sent.
func (w *Writer) Sent(d Debit) error {
	return w.line(fmt.Sprintf("s %s %s %d\n", d.Key, d.Org, d.Amount))
}

// Acknowledged records the acknowledgement of key.
func (w *Writer) Acknowledged(key, tx string, replayed bool) error {
	if replayed {
		return w.line(fmt.Sprintf("a %s %s r\n", key, tx))
	}
	return w.line(fmt.Sprintf("a %s %s\n", key, tx))
}

// line writes one line with one write(2).
func (w *Writer) line(s string) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if _, err := w.f.WriteString(s); err != nil {
		return fmt.Errorf("writing the journal: %w", err)
	}
	return nil
}

// Close closes the journal.
func (w *Writer) Close() error { return w.f.Close() }
