package localstack

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// DefaultDatabase is the database StartPostgres creates and URL points at.
const DefaultDatabase = "tally"

// postgresConfFile is rewritten on every start and included from
// postgresql.conf, so that port and durability follow PostgresConfig.
const postgresConfFile = "tally.conf"

// maxSocketPath is the longest unix socket path PostgreSQL accepts (the size
// of sun_path minus the terminating NUL).
const maxSocketPath = 107

// PostgresConfig configures StartPostgres.
type PostgresConfig struct {
	// Dir is the data directory. It is created and initialised when missing
	// or empty, and reused when it already holds a cluster. Required.
	Dir string
	// Port is the TCP port on 127.0.0.1. 0 reuses the port of the previous
	// run of this cluster when it is free, else picks a free one.
	Port int
	// Durable keeps fsync, synchronous_commit and full_page_writes on. When
	// false (tests, throw-away dev data) they are off: faster, but data may
	// be lost if the machine crashes.
	Durable bool
	// Logger receives lifecycle messages; nil discards them.
	Logger *slog.Logger
}

// Postgres is a private PostgreSQL cluster started by StartPostgres. The
// server is daemonised by pg_ctl: it outlives the calling process unless Stop
// is called, and a later StartPostgres on the same Dir takes it over.
type Postgres struct {
	dir     string
	port    int
	durable bool
	tools   pgTools
	logger  *slog.Logger
	// primaryConnInfo is how a standby (StartStandby) streams from its primary; empty for a
	// primary. syncStandby is the primary's synchronous_standby_names (SetSynchronousStandby).
	primaryConnInfo, syncStandby string
}

// StartPostgres starts (initialising it first if needed) a PostgreSQL
// cluster in cfg.Dir that listens on 127.0.0.1 with trust authentication,
// waits until it accepts connections and creates the database "tally" if it
// is missing. When running as root, the server runs as the postgres user and
// the data directory is handed over to it.
func StartPostgres(ctx context.Context, cfg PostgresConfig) (*Postgres, error) {
	p, err := startPostgres(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("starting postgres: %w", err)
	}
	return p, nil
}

func startPostgres(ctx context.Context, cfg PostgresConfig) (*Postgres, error) {
	if cfg.Dir == "" {
		return nil, errors.New("Dir is required")
	}
	ctx, cancel := withDefaultTimeout(ctx)
	defer cancel()
	logger := loggerOrDiscard(cfg.Logger).With("server", "postgres")

	tools, err := findPGTools()
	if err != nil {
		return nil, err
	}
	dir, err := filepath.Abs(cfg.Dir)
	if err != nil {
		return nil, fmt.Errorf("resolving data dir: %w", err)
	}
	if dir, err = tools.prepareDir(ctx, dir, logger); err != nil {
		return nil, err
	}
	p := &Postgres{dir: dir, durable: cfg.Durable, tools: tools, logger: logger.With("dir", dir)}

	initialised, err := p.hasCluster()
	if err != nil {
		return nil, err
	}
	if !initialised {
		if err := p.initdb(ctx, cfg.Durable); err != nil {
			return nil, err
		}
	} else {
		p.logger.Info("reusing existing cluster")
	}
	if err := p.clearStalePid(ctx); err != nil {
		return nil, err
	}

	// A port picked here may be taken by someone else before the server
	// binds it, so retry with another one when the choice was ours.
	const attempts = 3
	for attempt := 1; ; attempt++ {
		if p.port, err = p.choosePort(cfg.Port); err != nil {
			return nil, err
		}
		if err := p.writeConf(); err != nil {
			return nil, err
		}
		err = p.start(ctx)
		if err == nil {
			break
		}
		if cfg.Port != 0 || attempt == attempts || !errors.Is(err, errPortInUse) {
			return nil, err
		}
		p.logger.Warn("port taken, retrying with another", "port", p.port)
		cfg.Port = 0
	}

	if err := p.ensureDatabase(ctx, DefaultDatabase); err != nil {
		_ = p.Stop(context.Background())
		return nil, err
	}
	p.logger.Info("postgres ready", "url", p.URL())
	return p, nil
}

// URL returns the URL of the "tally" database as the postgres superuser.
func (p *Postgres) URL() string {
	return p.DatabaseURL(DefaultDatabase)
}

// AdminURL returns the URL of the "postgres" maintenance database, for
// creating and dropping databases.
func (p *Postgres) AdminURL() string {
	return p.DatabaseURL("postgres")
}

// DatabaseURL returns the URL of database name as the postgres superuser.
func (p *Postgres) DatabaseURL(name string) string {
	return fmt.Sprintf("postgres://postgres@%s/%s?sslmode=disable", hostPort(p.port), url.PathEscape(name))
}

// Port returns the server's TCP port.
func (p *Postgres) Port() int {
	return p.port
}

// Dir returns the data directory in use. It differs from PostgresConfig.Dir
// only when that directory could not be made accessible to the postgres
// user, in which case a directory under the system temp dir is used.
func (p *Postgres) Dir() string {
	return p.dir
}

// Stop shuts the server down (pg_ctl stop -m fast) and waits for it to exit.
// Stopping a stopped server is a no-op.
func (p *Postgres) Stop(ctx context.Context) error {
	if _, err := os.Stat(filepath.Join(p.dir, "postmaster.pid")); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err := p.tools.run(ctx, "pg_ctl", "stop", "-D", p.dir, "-m", "fast", "-w", "-t", "60", "-s"); err != nil {
		return fmt.Errorf("stopping postgres: %w", err)
	}
	p.logger.Info("postgres stopped")
	return nil
}

// Restart starts the server again on the same port with the same data, stopping it first
// (pg_ctl stop -m fast) when it is running. Tests use Stop then Restart to simulate an outage.
func (p *Postgres) Restart(ctx context.Context) error {
	if err := p.Stop(ctx); err != nil {
		return fmt.Errorf("restarting postgres: %w", err)
	}
	ctx, cancel := withDefaultTimeout(ctx)
	defer cancel()
	if err := p.start(ctx); err != nil {
		return fmt.Errorf("restarting postgres: %w", err)
	}
	if err := p.ensureDatabase(ctx, DefaultDatabase); err != nil {
		return fmt.Errorf("restarting postgres: %w", err)
	}
	return nil
}

// StopImmediate stops the server the way a crash would (pg_ctl stop -m
// immediate: no checkpoint, crash recovery on the next start) and waits until
// it has exited. Start brings it back.
func (p *Postgres) StopImmediate(ctx context.Context) error {
	if _, err := os.Stat(filepath.Join(p.dir, "postmaster.pid")); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err := p.tools.run(ctx, "pg_ctl", "stop", "-D", p.dir, "-m", "immediate", "-w", "-t", "60", "-s"); err != nil {
		return fmt.Errorf("stopping postgres immediately: %w", err)
	}
	p.logger.Info("postgres stopped immediately")
	return nil
}

// Running reports whether the server's postmaster is alive.
func (p *Postgres) Running() bool {
	data, err := os.ReadFile(filepath.Join(p.dir, "postmaster.pid"))
	if err != nil {
		return false
	}
	first, _, _ := strings.Cut(string(data), "\n")
	pid, _ := strconv.Atoi(strings.TrimSpace(first))
	return pid > 0 && isPostgresProcess(pid)
}

// Start starts a stopped server again on the same port and waits until it
// accepts connections (after crash recovery, if it was stopped immediately).
func (p *Postgres) Start(ctx context.Context) error {
	ctx, cancel := withDefaultTimeout(ctx)
	defer cancel()
	if err := p.clearStalePid(ctx); err != nil {
		return fmt.Errorf("starting postgres again: %w", err)
	}
	if err := p.start(ctx); err != nil {
		return fmt.Errorf("starting postgres again: %w", err)
	}
	return nil
}

// hasCluster reports whether the data dir already holds a cluster, and
// fails when it holds anything else.
func (p *Postgres) hasCluster() (bool, error) {
	if _, err := os.Stat(filepath.Join(p.dir, "PG_VERSION")); err == nil {
		return true, nil
	}
	entries, err := os.ReadDir(p.dir)
	if err != nil {
		return false, fmt.Errorf("reading data dir: %w", err)
	}
	if len(entries) > 0 {
		return false, fmt.Errorf("data dir %s is not empty and holds no postgres cluster", p.dir)
	}
	return false, nil
}

// initdb creates a new cluster with trust authentication.
func (p *Postgres) initdb(ctx context.Context, durable bool) error {
	p.logger.Info("initialising cluster")
	args := []string{"-D", p.dir, "-U", "postgres", "--auth=trust", "--encoding=UTF8", "--locale=C"}
	if !durable {
		args = append(args, "--no-sync")
	}
	if err := p.tools.run(ctx, "initdb", args...); err != nil {
		return err
	}
	include := fmt.Sprintf("\n# Added by tally localstack.\ninclude_if_exists = '%s'\n", postgresConfFile)
	f, err := os.OpenFile(filepath.Join(p.dir, "postgresql.conf"), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return fmt.Errorf("opening postgresql.conf: %w", err)
	}
	if _, err := io.WriteString(f, include); err != nil {
		_ = f.Close()
		return fmt.Errorf("writing postgresql.conf: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("writing postgresql.conf: %w", err)
	}
	return nil
}

// clearStalePid deals with a postmaster.pid left by an earlier run: a server
// that is still running is stopped (so that this process owns the one it
// starts), and a pid file whose process is gone is removed.
func (p *Postgres) clearStalePid(ctx context.Context) error {
	pidFile := filepath.Join(p.dir, "postmaster.pid")
	data, err := os.ReadFile(pidFile)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading postmaster.pid: %w", err)
	}
	first, _, _ := strings.Cut(string(data), "\n")
	pid, _ := strconv.Atoi(strings.TrimSpace(first))
	if pid > 0 && isPostgresProcess(pid) {
		p.logger.Warn("stopping postgres left running by an earlier run", "pid", pid)
		if err := p.tools.run(ctx, "pg_ctl", "stop", "-D", p.dir, "-m", "fast", "-w", "-t", "60", "-s"); err != nil {
			return fmt.Errorf("stopping earlier postgres: %w", err)
		}
		return nil
	}
	p.logger.Info("removing stale postmaster.pid", "pid", pid)
	if err := os.Remove(pidFile); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("removing stale postmaster.pid: %w", err)
	}
	return nil
}

// isPostgresProcess reports whether pid is a live (not zombie) postgres
// process.
func isPostgresProcess(pid int) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// The format is "pid (comm) state ..."; comm may contain spaces.
	open, closing := strings.IndexByte(string(stat), '('), strings.LastIndexByte(string(stat), ')')
	if open < 0 || closing < open || closing+2 >= len(stat) {
		return false
	}
	comm, state := string(stat[open+1:closing]), stat[closing+2]
	return comm == "postgres" && state != 'Z' && state != 'X'
}

var confPortRE = regexp.MustCompile(`(?m)^port = (\d+)$`)

// choosePort returns port, or when it is 0 the port of the previous run if
// it is still free, or else a free port.
func (p *Postgres) choosePort(port int) (int, error) {
	if port != 0 {
		return port, nil
	}
	if data, err := os.ReadFile(filepath.Join(p.dir, postgresConfFile)); err == nil {
		if m := confPortRE.FindSubmatch(data); m != nil {
			if prev, err := strconv.Atoi(string(m[1])); err == nil && prev != p.port && portIsFree(prev) {
				return prev, nil
			}
		}
	}
	return FreePort()
}

// writeConf writes the settings that StartPostgres controls.
func (p *Postgres) writeConf() error {
	onOff := map[bool]string{true: "on", false: "off"}[p.durable]
	sockets := p.dir
	if len(sockets)+len("/.s.PGSQL.65535") > maxSocketPath {
		sockets = "" // TCP only: the socket path would be too long.
	}
	conf := fmt.Sprintf(`# Written by tally localstack on every start; changes are overwritten.
listen_addresses = '127.0.0.1'
port = %d
unix_socket_directories = %s
max_connections = 200
fsync = %s
synchronous_commit = %s
full_page_writes = %s
`, p.port, quoteConf(sockets), onOff, onOff, onOff)
	if p.primaryConnInfo != "" {
		conf += "primary_conninfo = " + quoteConf(p.primaryConnInfo) + "\n"
	}
	if p.syncStandby != "" {
		conf += "synchronous_standby_names = " + quoteConf(p.syncStandby) + "\n"
	}
	path := filepath.Join(p.dir, postgresConfFile)
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		return fmt.Errorf("writing %s: %w", postgresConfFile, err)
	}
	if err := p.tools.chown(path); err != nil {
		return fmt.Errorf("writing %s: %w", postgresConfFile, err)
	}
	return nil
}

// quoteConf quotes s as a postgresql.conf string value.
func quoteConf(s string) string {
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}

// errPortInUse marks a start failure caused by the port being taken.
var errPortInUse = errors.New("port already in use")

// start runs pg_ctl start and waits until the server is up.
func (p *Postgres) start(ctx context.Context) error {
	logFile := filepath.Join(p.dir, "postgres.log")
	var before int64
	if info, err := os.Stat(logFile); err == nil {
		before = info.Size()
	}
	p.logger.Info("starting postgres", "port", p.port)
	err := p.tools.run(ctx, "pg_ctl", "start", "-D", p.dir, "-l", logFile, "-w", "-t", "60", "-s")
	if err == nil {
		return nil
	}
	log := logSince(logFile, before, 4<<10)
	if strings.Contains(log, "Address already in use") || strings.Contains(log, "could not bind") {
		err = fmt.Errorf("%w: %w", errPortInUse, err)
	}
	return fmt.Errorf("%w; server log:\n%s", err, log)
}

// logSince returns what was appended to path after offset, at most max
// trailing bytes of it.
func logSince(path string, offset, max int64) string {
	info, err := os.Stat(path)
	if err != nil {
		return ""
	}
	if n := info.Size() - offset; n < max {
		max = n
	}
	if max <= 0 {
		return ""
	}
	return fileTail(path, max)
}

// ensureDatabase waits until the server accepts connections and creates
// database name when it does not exist.
func (p *Postgres) ensureDatabase(ctx context.Context, name string) error {
	var conn *pgx.Conn
	err := poll(ctx, nil, func(ctx context.Context) error {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		c, err := pgx.Connect(cctx, p.AdminURL())
		if err != nil {
			return err
		}
		conn = c
		return nil
	})
	if err != nil {
		return fmt.Errorf("connecting to postgres: %w", err)
	}
	defer conn.Close(context.Background())

	var exists bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&exists); err != nil {
		return fmt.Errorf("checking database %s: %w", name, err)
	}
	if exists {
		return nil
	}
	_, err = conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize())
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "42P04" { // duplicate_database: created concurrently
		return nil
	}
	if err != nil {
		return fmt.Errorf("creating database %s: %w", name, err)
	}
	p.logger.Info("created database", "database", name)
	return nil
}

// fallbackDataDir returns the directory under the system temp dir used when
// dir cannot be made accessible to the postgres user. It is derived from dir
// so that later runs find the same cluster again.
func fallbackDataDir(dir string) string {
	sum := sha256.Sum256([]byte(dir))
	return filepath.Join(os.TempDir(), "tally-pg-"+hex.EncodeToString(sum[:6]))
}
