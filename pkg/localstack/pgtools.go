package localstack

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// pgToolNames returns the executables a PostgreSQL bin directory must
// contain.
func pgToolNames() []string {
	return []string{"initdb", "pg_ctl", "postgres"}
}

// pgTools runs the PostgreSQL server programs, as the postgres user when the
// current process is root (initdb and postgres refuse to run as root).
type pgTools struct {
	binDir  string
	runuser string // path of runuser; empty when running as ourselves
	uid     int    // postgres user, valid when runuser is set
	gid     int
}

// findPGTools locates the PostgreSQL binaries: on PATH first, else the
// highest version under /usr/lib/postgresql/*/bin.
func findPGTools() (pgTools, error) {
	binDir, err := findPGBinDir()
	if err != nil {
		return pgTools{}, err
	}
	t := pgTools{binDir: binDir}
	if os.Geteuid() != 0 {
		return t, nil
	}
	if t.runuser, err = exec.LookPath("runuser"); err != nil {
		return pgTools{}, fmt.Errorf("running as root needs runuser to switch to the postgres user: %w", err)
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return pgTools{}, fmt.Errorf("running as root needs a postgres user: %w", err)
	}
	if t.uid, err = strconv.Atoi(u.Uid); err != nil {
		return pgTools{}, fmt.Errorf("parsing uid of postgres: %w", err)
	}
	if t.gid, err = strconv.Atoi(u.Gid); err != nil {
		return pgTools{}, fmt.Errorf("parsing gid of postgres: %w", err)
	}
	return t, nil
}

func findPGBinDir() (string, error) {
	if path, err := exec.LookPath("pg_ctl"); err == nil {
		if real, err := filepath.EvalSymlinks(path); err == nil && hasPGTools(filepath.Dir(real)) {
			return filepath.Dir(real), nil
		}
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	slices.SortFunc(dirs, func(a, b string) int {
		return -compareVersions(filepath.Base(filepath.Dir(a)), filepath.Base(filepath.Dir(b)))
	})
	for _, dir := range dirs {
		if hasPGTools(dir) {
			return dir, nil
		}
	}
	return "", errors.New("postgres binaries (initdb, pg_ctl, postgres) not found on PATH or under /usr/lib/postgresql/*/bin")
}

func hasPGTools(dir string) bool {
	for _, name := range pgToolNames() {
		if info, err := os.Stat(filepath.Join(dir, name)); err != nil || info.IsDir() {
			return false
		}
	}
	return true
}

// compareVersions compares dotted numeric versions such as "9.6" and "15".
func compareVersions(a, b string) int {
	as, bs := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < max(len(as), len(bs)); i++ {
		var x, y int
		if i < len(as) {
			x, _ = strconv.Atoi(as[i])
		}
		if i < len(bs) {
			y, _ = strconv.Atoi(bs[i])
		}
		if x != y {
			return x - y
		}
	}
	return 0
}

// command builds a command running tool from the bin dir.
func (t pgTools) command(ctx context.Context, tool string, args ...string) *exec.Cmd {
	path := tool
	if !strings.Contains(tool, "/") && slices.Contains(pgToolNames(), tool) {
		path = filepath.Join(t.binDir, tool)
	}
	if t.runuser != "" {
		args = append([]string{"-u", "postgres", "--", path}, args...)
		path = t.runuser
	}
	cmd := exec.CommandContext(ctx, path, args...)
	// The postgres user may not be able to enter our working directory.
	cmd.Dir = "/"
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	// pg_ctl start leaves a daemon behind; never wait for it on the pipes.
	cmd.WaitDelay = 5 * time.Second
	return cmd
}

// run runs tool and includes its output in the error.
func (t pgTools) run(ctx context.Context, tool string, args ...string) error {
	out, err := t.command(ctx, tool, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %w: %s", tool, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// chown gives path to the postgres user when running as root.
func (t pgTools) chown(path string) error {
	if t.runuser == "" {
		return nil
	}
	return os.Lchown(path, t.uid, t.gid)
}

// prepareDir creates the data dir and, when running as root, hands it to the
// postgres user and makes its parents traversable. It returns the directory
// to use, which is a fallback under the temp dir when dir stays unreachable
// for postgres.
func (t pgTools) prepareDir(ctx context.Context, dir string, logger *slog.Logger) (string, error) {
	if err := t.makeOwnedDir(dir); err != nil {
		return "", err
	}
	if t.runuser == "" {
		return dir, nil
	}
	if err := makeTraversable(filepath.Dir(dir), logger); err != nil {
		logger.Warn("cannot make data dir parents traversable", "err", err)
	}
	if t.canUse(ctx, dir) {
		return dir, nil
	}
	fallback := fallbackDataDir(dir)
	logger.Warn("data dir not accessible to the postgres user, using fallback", "dir", dir, "fallback", fallback)
	if err := t.makeOwnedDir(fallback); err != nil {
		return "", err
	}
	if !t.canUse(ctx, fallback) {
		return "", fmt.Errorf("neither %s nor %s is accessible to the postgres user", dir, fallback)
	}
	return fallback, nil
}

// makeOwnedDir creates dir (mode 0700, parents 0755) and, when running as
// root, gives it and everything in it to postgres unless it already is.
func (t pgTools) makeOwnedDir(dir string) error {
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return fmt.Errorf("creating parent of data dir: %w", err)
	}
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("creating data dir: %w", err)
	}
	if t.runuser == "" {
		return nil
	}
	info, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("inspecting data dir: %w", err)
	}
	if st, ok := info.Sys().(*syscall.Stat_t); ok && int(st.Uid) == t.uid {
		return nil
	}
	err = filepath.WalkDir(dir, func(path string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return t.chown(path)
	})
	if err != nil {
		return fmt.Errorf("handing data dir to postgres: %w", err)
	}
	return nil
}

// canUse reports whether the postgres user can enter and write dir.
func (t pgTools) canUse(ctx context.Context, dir string) bool {
	return t.command(ctx, "test", "-x", dir, "-a", "-w", dir).Run() == nil
}

// makeTraversable adds o+x to dir and each of its parents that lacks it.
func makeTraversable(dir string, logger *slog.Logger) error {
	for {
		info, err := os.Stat(dir)
		if err != nil {
			return fmt.Errorf("inspecting %s: %w", dir, err)
		}
		if info.Mode().Perm()&0o001 == 0 {
			logger.Info("making directory traversable for postgres", "dir", dir)
			if err := os.Chmod(dir, info.Mode()|0o001); err != nil {
				return fmt.Errorf("chmod o+x %s: %w", dir, err)
			}
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return nil
		}
		dir = parent
	}
}
