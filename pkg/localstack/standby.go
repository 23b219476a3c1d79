package localstack

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/jackc/pgx/v5"
)

// StandbyName is the application_name a standby started by StartStandby streams under, and so
// the name a synchronous primary waits for.
const StandbyName = "tally_standby"

// StandbyConfig configures StartStandby.
type StandbyConfig struct {
	// Dir is the standby's data directory: missing or empty (a base backup of the primary is
	// copied into it). Required.
	Dir string
	// Primary is the running cluster the standby streams from. Required.
	Primary *Postgres
	// Port is the standby's TCP port on 127.0.0.1; 0 picks a free one.
	Port int
	// Synchronous makes the primary wait, at every commit, until the standby has flushed it
	// (synchronous_standby_names): an acknowledged commit survives the loss of the primary. It
	// needs a durable primary (synchronous_commit on). Without it the standby lags by whatever
	// the primary committed in the last instants.
	Synchronous bool
	// Durable is as PostgresConfig.Durable, for the standby's own writes.
	Durable bool
}

// StartStandby makes a streaming replica of cfg.Primary: pg_basebackup of the primary into
// cfg.Dir, standby.signal and primary_conninfo, then starts it (hot standby: it answers read-only
// queries) and waits until it streams. With Synchronous, the primary then commits synchronously
// to it. Promote turns it into a primary.
func StartStandby(ctx context.Context, cfg StandbyConfig) (*Postgres, error) {
	p, err := startStandby(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("starting postgres standby: %w", err)
	}
	return p, nil
}

func startStandby(ctx context.Context, cfg StandbyConfig) (*Postgres, error) {
	if cfg.Dir == "" || cfg.Primary == nil {
		return nil, errors.New("Dir and Primary are required")
	}
	if cfg.Synchronous && !cfg.Primary.durable {
		return nil, errors.New("a synchronous standby needs a durable primary (synchronous_commit is off on the others)")
	}
	ctx, cancel := withDefaultTimeout(ctx)
	defer cancel()
	primary := cfg.Primary
	dir, err := filepath.Abs(cfg.Dir)
	if err != nil {
		return nil, fmt.Errorf("resolving data dir: %w", err)
	}
	if dir, err = primary.tools.prepareDir(ctx, dir, primary.logger); err != nil {
		return nil, err
	}
	p := &Postgres{dir: dir, durable: cfg.Durable, tools: primary.tools, logger: primary.logger.With("dir", dir, "role", "standby"),
		primaryConnInfo: fmt.Sprintf("host=127.0.0.1 port=%d user=postgres application_name=%s", primary.port, StandbyName)}
	if initialised, err := p.hasCluster(); err != nil {
		return nil, err
	} else if initialised {
		return nil, fmt.Errorf("data dir %s already holds a cluster: a standby starts from a fresh base backup", dir)
	}
	p.logger.Info("copying a base backup of the primary", "primary_port", primary.port)
	args := []string{"-D", dir, "-h", "127.0.0.1", "-p", fmt.Sprint(primary.port), "-U", "postgres", "-X", "stream", "-c", "fast"}
	if !cfg.Durable {
		args = append(args, "--no-sync")
	}
	if err := p.tools.run(ctx, filepath.Join(p.tools.binDir, "pg_basebackup"), args...); err != nil {
		return nil, err
	}
	signal := filepath.Join(dir, "standby.signal")
	if err := os.WriteFile(signal, nil, 0o600); err != nil {
		return nil, fmt.Errorf("writing standby.signal: %w", err)
	}
	if err := p.tools.chown(signal); err != nil {
		return nil, fmt.Errorf("writing standby.signal: %w", err)
	}
	if p.port, err = p.choosePort(cfg.Port); err != nil {
		return nil, err
	}
	if err := p.writeConf(); err != nil {
		return nil, err
	}
	if err := p.start(ctx); err != nil {
		return nil, err
	}
	if err := p.ensureDatabase(ctx, DefaultDatabase); err != nil {
		_ = p.Stop(context.Background())
		return nil, err
	}
	if err := primary.waitStandby(ctx, "streaming", ""); err != nil {
		_ = p.Stop(context.Background())
		return nil, err
	}
	if cfg.Synchronous {
		if err := primary.SetSynchronousStandby(ctx, StandbyName); err != nil {
			_ = p.Stop(context.Background())
			return nil, err
		}
	}
	p.logger.Info("standby streaming", "port", p.port, "synchronous", cfg.Synchronous)
	return p, nil
}

// SetSynchronousStandby sets the primary's synchronous_standby_names to name (empty: commits no
// longer wait for a standby), reloads the configuration and, for a name, waits until that standby
// is synchronous.
func (p *Postgres) SetSynchronousStandby(ctx context.Context, name string) error {
	p.syncStandby = name
	if err := p.writeConf(); err != nil {
		return err
	}
	if err := p.exec(ctx, `SELECT pg_reload_conf()`); err != nil {
		return fmt.Errorf("reloading the configuration: %w", err)
	}
	if name == "" {
		return nil
	}
	return p.waitStandby(ctx, "streaming", "sync")
}

// waitStandby waits until the primary sees StandbyName's replication in state (and sync state
// syncState, unless empty).
func (p *Postgres) waitStandby(ctx context.Context, state, syncState string) error {
	err := poll(ctx, nil, func(ctx context.Context) error {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		conn, err := pgx.Connect(cctx, p.AdminURL())
		if err != nil {
			return err
		}
		defer conn.Close(context.WithoutCancel(ctx))
		var st, sync string
		err = conn.QueryRow(cctx, `SELECT state, sync_state FROM pg_stat_replication WHERE application_name = $1`, StandbyName).Scan(&st, &sync)
		if err != nil {
			return fmt.Errorf("reading pg_stat_replication: %w", err)
		}
		if st != state || (syncState != "" && sync != syncState) {
			return fmt.Errorf("standby is %s (%s), not yet %s %s", st, sync, state, syncState)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("waiting for the standby: %w", err)
	}
	return nil
}

// Promote turns a standby into a primary (pg_ctl promote) and waits until it accepts writes.
func (p *Postgres) Promote(ctx context.Context) error {
	ctx, cancel := withDefaultTimeout(ctx)
	defer cancel()
	if err := p.tools.run(ctx, "pg_ctl", "promote", "-D", p.dir, "-w", "-t", "60", "-s"); err != nil {
		return fmt.Errorf("promoting postgres: %w", err)
	}
	err := poll(ctx, nil, func(ctx context.Context) error {
		standby, err := p.InRecovery(ctx)
		if err == nil && standby {
			err = errors.New("still in recovery")
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("promoting postgres: %w", err)
	}
	p.logger.Info("standby promoted", "port", p.port)
	return nil
}

// InRecovery reports whether the server is a standby (pg_is_in_recovery).
func (p *Postgres) InRecovery(ctx context.Context) (bool, error) {
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(cctx, p.AdminURL())
	if err != nil {
		return false, fmt.Errorf("connecting to postgres: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var standby bool
	if err := conn.QueryRow(cctx, `SELECT pg_is_in_recovery()`).Scan(&standby); err != nil {
		return false, fmt.Errorf("reading pg_is_in_recovery: %w", err)
	}
	return standby, nil
}

// exec runs one statement on the maintenance database.
func (p *Postgres) exec(ctx context.Context, sql string) error {
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(cctx, p.AdminURL())
	if err != nil {
		return fmt.Errorf("connecting to postgres: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	_, err = conn.Exec(cctx, sql)
	return err
}
