package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// AdvisoryLease is a Lease held as a PostgreSQL session advisory lock on a dedicated pooled
// connection. PostgreSQL releases it when that session ends, so a crashed replica's lease
// passes to another one; a replica whose connection stops answering gives it up.
type AdvisoryLease struct {
	pool     *pgxpool.Pool
	name     string
	interval time.Duration
	logger   *slog.Logger
}

// NewAdvisoryLease returns a lease named name, tried and checked every interval.
func NewAdvisoryLease(pool *pgxpool.Pool, name string, interval time.Duration, logger *slog.Logger) (*AdvisoryLease, error) {
	if pool == nil || name == "" || interval <= 0 || logger == nil {
		return nil, errors.New("store: lease needs a pool, a name, a positive interval and a logger")
	}
	return &AdvisoryLease{pool: pool, name: name, interval: interval, logger: logger}, nil
}

// Acquire implements Lease.
func (l *AdvisoryLease) Acquire(ctx context.Context) (context.Context, func(), error) {
	for {
		conn, err := l.pool.Acquire(ctx)
		if err != nil {
			return nil, nil, fmt.Errorf("acquiring lease connection: %w", err)
		}
		var ok bool
		if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock(hashtext($1))`, l.name).Scan(&ok); err != nil {
			conn.Release()
			return nil, nil, fmt.Errorf("trying lease %s: %w", l.name, err)
		}
		if ok {
			held, cancel := context.WithCancel(ctx)
			done := make(chan struct{})
			go func() {
				defer close(done)
				l.keep(held, cancel, conn)
			}()
			release := func() {
				cancel()
				<-done
				uctx, ucancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
				defer ucancel()
				if _, err := conn.Exec(uctx, `SELECT pg_advisory_unlock(hashtext($1))`, l.name); err != nil {
					// Closing the session releases the lock anyway.
					_ = conn.Conn().Close(uctx)
				}
				conn.Release()
			}
			return held, release, nil
		}
		conn.Release()
		t := time.NewTimer(l.interval)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, nil, ctx.Err()
		case <-t.C:
		}
	}
}

// keep checks the lease's session every interval and cancels held when it stops answering.
func (l *AdvisoryLease) keep(held context.Context, lost context.CancelFunc, conn *pgxpool.Conn) {
	t := time.NewTicker(l.interval)
	defer t.Stop()
	for {
		select {
		case <-held.Done():
			return
		case <-t.C:
		}
		cctx, cancel := context.WithTimeout(held, l.interval)
		err := conn.Ping(cctx)
		cancel()
		if err != nil && held.Err() == nil {
			l.logger.Warn("evaluator lease lost", "err", err)
			lost()
			return
		}
	}
}
