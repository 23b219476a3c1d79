// Package streamwindow sizes the DebitStream windows from what the ledger measures, so that
// queueing stays within a latency target: a debit received waits for its batch's commit, and
// every debit received before it that is still unacknowledged is work ahead of it, so the
// wait is the debits in flight divided by the commit rate (Little's law). A window that only
// bounds a count (4,096 per stream, eight streams) lets that wait grow to seconds at 15,000
// debits a second; this one bounds the total in flight across streams to about the commit rate
// times the target.
//
// The rule is the gradient of Netflix's concurrency-limits (and, before it, TCP Vegas): once per
// interval the total window is multiplied by target ÷ measured latency, the factor kept within
// [½, 2]. When the window is full, latency ≈ window ÷ rate, so one step lands on rate × target
// whatever the start; when commits are fast the window doubles per interval until queueing
// brings the latency to the target; when commits are slow (a slow disk, a lock) it shrinks to
// the floor, which is kept large enough for the committer to fill a batch. The window only grows
// when some stream used all of its share during the interval (like BBR's application-limited
// check): a window nobody fills says nothing about what a larger one would do.
//
// The package is pure: every time comes from the caller (the stream's receive and ack times),
// so tests drive it with any clock.
package streamwindow

import (
	"errors"
	"sync"
	"time"
)

// Config sizes a Window. Zero values take the defaults below.
type Config struct {
	// Target is the mean time from a debit's receipt to its acknowledgement the window aims
	// at (default 25 ms: half the 50 ms p99 aimed at for an acknowledgement, network and
	// client included). When one commit batch alone takes longer, the window stays at Min.
	Target time.Duration
	// Min is the floor of the total window (default 512: two of the committer's default
	// batches, so one can fill while the other commits).
	Min int
	// Max is the ceiling of the total window (default 32,768).
	Max int
	// StreamMin is the floor of one stream's share (default 16), so every stream can still
	// send a batch whatever the number of streams; kept small, so that many streams cannot
	// take the total far past the window (the committer batches across streams anyway).
	StreamMin int
	// Interval is how often the window is resized (default 4 × Target).
	Interval time.Duration
}

// Defaults of Config.
const (
	DefaultTarget    = 25 * time.Millisecond
	DefaultMin       = 512
	DefaultMax       = 32_768
	DefaultStreamMin = 16
)

func (c *Config) defaults() error {
	if c.Target == 0 {
		c.Target = DefaultTarget
	}
	if c.Min == 0 {
		c.Min = DefaultMin
	}
	if c.Max == 0 {
		c.Max = DefaultMax
	}
	if c.StreamMin == 0 {
		c.StreamMin = DefaultStreamMin
	}
	if c.Interval == 0 {
		c.Interval = 4 * c.Target
	}
	switch {
	case c.Target < 0 || c.Interval < 0:
		return errors.New("streamwindow: Target and Interval must be positive")
	case c.Min < 1 || c.StreamMin < 1 || c.Max < c.Min:
		return errors.New("streamwindow: need 1 ≤ Min ≤ Max and StreamMin ≥ 1")
	}
	return nil
}

// Window is the total window of a ledger's DebitStreams, shared equally by the open streams.
// It is safe for concurrent use.
type Window struct {
	cfg Config

	mu      sync.Mutex
	total   float64
	streams int
	// The current interval: its start, the acknowledgements seen and their summed latency,
	// and whether a stream was held back by its share.
	start   time.Time
	acks    int
	latency time.Duration
	limited bool
}

// New returns a Window at its floor: it grows as soon as commits show there is room.
func New(cfg Config) (*Window, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	return &Window{cfg: cfg, total: float64(cfg.Min)}, nil
}

// Join counts one more open stream; the returned func counts it out.
func (w *Window) Join() (leave func()) {
	w.mu.Lock()
	w.streams++
	w.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			w.mu.Lock()
			w.streams--
			w.mu.Unlock()
		})
	}
}

// Grant is the window of one open stream now: its share of the total, at least StreamMin.
func (w *Window) Grant() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.grant()
}

func (w *Window) grant() int {
	return max(int(w.total)/max(w.streams, 1), w.cfg.StreamMin)
}

// Total is the total window now.
func (w *Window) Total() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return int(w.total)
}

// Limited records that a stream had its whole share unacknowledged and had to wait.
func (w *Window) Limited() {
	w.mu.Lock()
	w.limited = true
	w.mu.Unlock()
}

// Acked records n debits received at received and acknowledged at acked, and resizes the
// window when an interval has passed since the last resize.
func (w *Window) Acked(received, acked time.Time, n int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.start.IsZero() {
		w.start = received
	}
	w.acks += n
	w.latency += time.Duration(n) * acked.Sub(received)
	if acked.Sub(w.start) < w.cfg.Interval {
		return
	}
	mean := w.latency / time.Duration(w.acks)
	gradient := 2.0
	if mean > 0 {
		gradient = min(max(float64(w.cfg.Target)/float64(mean), 0.5), 2)
	}
	if gradient > 1 && !w.limited {
		gradient = 1
	}
	w.total = min(max(w.total*gradient, float64(w.cfg.Min)), float64(w.cfg.Max))
	w.start, w.acks, w.latency, w.limited = acked, 0, 0, false
}
