package localstack

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// errNotOurs means a port accepts connections but the socket listening on it belongs to another
// process.
var errNotOurs = errors.New("the port is served by another process")

// listensOn reports whether process pid holds a listening TCP socket on port. ok is false when
// /proc cannot tell (not Linux, no permission): callers then trust a successful connection.
func listensOn(pid, port int) (listening, ok bool) {
	inodes := map[string]bool{}
	known := false
	// The process's own tables: it may run in another network namespace (ip netns exec).
	for _, table := range []string{fmt.Sprintf("/proc/%d/net/tcp", pid), fmt.Sprintf("/proc/%d/net/tcp6", pid)} {
		f, err := os.Open(table)
		if err != nil {
			continue
		}
		known = true
		sc := bufio.NewScanner(f)
		sc.Scan() // header
		for sc.Scan() {
			// sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode
			fields := strings.Fields(sc.Text())
			if len(fields) < 10 || fields[3] != "0A" { // 0A: LISTEN
				continue
			}
			_, hexPort, found := strings.Cut(fields[1], ":")
			if !found {
				continue
			}
			if p, err := strconv.ParseInt(hexPort, 16, 32); err == nil && int(p) == port {
				inodes[fields[9]] = true
			}
		}
		_ = f.Close()
	}
	if !known {
		return false, false
	}
	if len(inodes) == 0 {
		return false, true
	}
	// Our own child's descriptors are readable while it runs; an exited one has none.
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return false, true
	}
	for _, fd := range fds {
		link, err := os.Readlink(filepath.Join(fmt.Sprintf("/proc/%d/fd", pid), fd.Name()))
		if err != nil {
			continue
		}
		if inode, found := strings.CutPrefix(link, "socket:["); found && inodes[strings.TrimSuffix(inode, "]")] {
			return true, true
		}
	}
	return false, true
}

// processState returns the state letter of pid (R, S, T, Z, ...) from /proc; ok is false when
// /proc cannot tell.
func processState(pid int) (state byte, ok bool) {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, false
	}
	// The format is "pid (comm) state ..."; comm may contain spaces.
	closing := strings.LastIndexByte(string(stat), ')')
	if closing < 0 || closing+2 >= len(stat) {
		return 0, false
	}
	return stat[closing+2], true
}
