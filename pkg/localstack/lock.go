package localstack

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// ErrLocked is wrapped by the error of Lock when another process holds the
// lock.
var ErrLocked = errors.New("locked by another process")

// LockedError says which process holds a lock.
type LockedError struct {
	Path string
	// Pid is the holder's process id as it wrote it, 0 when unknown.
	Pid int
}

// Error implements error.
func (e *LockedError) Error() string {
	if e.Pid > 0 {
		return fmt.Sprintf("%s is held by process %d", e.Path, e.Pid)
	}
	return e.Path + " is held by another process"
}

// Unwrap makes errors.Is(err, ErrLocked) true.
func (e *LockedError) Unwrap() error { return ErrLocked }

// FileLock is an exclusive lock on a file (flock), held until Unlock or the
// process's exit: a crashed holder never leaves a stale lock behind.
type FileLock struct {
	f *os.File
}

// Lock takes the exclusive lock on path without waiting, creating the file
// (and its directory) when missing, and writes the process id into it. When
// another process holds it, the error is a *LockedError naming its pid.
func Lock(path string) (*FileLock, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("creating the directory of %s: %w", path, err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("opening lock file: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		defer f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			data, _ := os.ReadFile(path)
			pid, _ := strconv.Atoi(strings.TrimSpace(string(data)))
			return nil, &LockedError{Path: path, Pid: pid}
		}
		return nil, fmt.Errorf("locking %s: %w", path, err)
	}
	// The file is never removed: removing it would let a second process lock
	// a new file while a third still waits on the old one.
	if err := f.Truncate(0); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("writing lock file: %w", err)
	}
	if _, err := f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("writing lock file: %w", err)
	}
	return &FileLock{f: f}, nil
}

// Unlock releases the lock.
func (l *FileLock) Unlock() error {
	_ = l.f.Truncate(0)
	if err := l.f.Close(); err != nil {
		return fmt.Errorf("releasing lock: %w", err)
	}
	return nil
}
