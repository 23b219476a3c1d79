package chaos

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/tallyhq/tally/pkg/localstack"
)

// The test network of the hosts topology: a bridge in the root namespace and one network
// namespace per host, linked to the bridge by a veth pair. Every name starts with "tally" so that
// cleanup never touches an interface or a namespace the suite did not create.
const (
	bridgeName = "tallybr0"
	// subnet is a private /24 that only the suite uses; the bridge (the root namespace, where
	// PostgreSQL, Redis, mailpit and stripe-mock are reached) is .1, host i is .10+i.
	subnet     = "10.77.0."
	bridgeIP   = subnet + "1"
	hostPrefix = "tally-h"
	ipTimeout  = 10 * time.Second
)

// Host is one "machine" of the topology: a network namespace with its own address.
type Host struct {
	// Name is the namespace (tally-h1, ...); the root end of its veth pair has the same name.
	Name string
	// IP is the host's address on the test network.
	IP string
}

// Topology is the test network: hosts in their own namespaces, linked to a bridge in the root
// namespace. It needs root (CAP_NET_ADMIN).
type Topology struct {
	Hosts []Host
	lock  *localstack.FileLock
}

// topologyLock is held by the process whose topology exists: the names and the subnet are the
// machine's, so a second run (another test binary, another checkout) waits for the first to end
// instead of removing its network from under it.
var topologyLock = filepath.Join(os.TempDir(), "tally-hosts-topology.lock")

// lockTopology takes topologyLock, waiting while another process holds it.
func lockTopology(ctx context.Context) (*localstack.FileLock, error) {
	for {
		l, err := localstack.Lock(topologyLock)
		if err == nil {
			return l, nil
		}
		if !errors.Is(err, localstack.ErrLocked) {
			return nil, err
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("waiting for another hosts topology to end (%w): %w", err, ctx.Err())
		case <-time.After(time.Second):
		}
	}
}

// hostName is the namespace (and the root-side veth) of host i (1-based).
func hostName(i int) string { return hostPrefix + strconv.Itoa(i) }

// StartTopology removes what a crashed run may have left, then creates the bridge and n hosts.
func StartTopology(ctx context.Context, n int) (_ *Topology, err error) {
	if n < 1 || n > 9 {
		return nil, fmt.Errorf("topology: %d hosts (1 to 9)", n)
	}
	lock, err := lockTopology(ctx)
	if err != nil {
		return nil, err
	}
	t := &Topology{lock: lock}
	defer func() {
		if err != nil {
			_ = t.Close(context.WithoutCancel(ctx))
		}
	}()
	if err := CleanTopology(ctx); err != nil {
		return nil, err
	}
	steps := [][]string{
		{"link", "add", bridgeName, "type", "bridge"},
		{"addr", "add", bridgeIP + "/24", "dev", bridgeName},
		{"link", "set", bridgeName, "up"},
	}
	for i := 1; i <= n; i++ {
		h := Host{Name: hostName(i), IP: subnet + strconv.Itoa(10+i)}
		steps = append(steps,
			[]string{"netns", "add", h.Name},
			[]string{"link", "add", h.Name, "type", "veth", "peer", "name", "eth0", "netns", h.Name},
			[]string{"link", "set", h.Name, "master", bridgeName, "up"},
			[]string{"-n", h.Name, "addr", "add", h.IP + "/24", "dev", "eth0"},
			[]string{"-n", h.Name, "link", "set", "eth0", "up"},
			[]string{"-n", h.Name, "link", "set", "lo", "up"},
		)
		t.Hosts = append(t.Hosts, h)
	}
	for _, args := range steps {
		if err := ip(ctx, args...); err != nil {
			return nil, err
		}
	}
	return t, nil
}

// CleanTopology deletes the suite's namespaces, veths and bridge (those of a previous, crashed run
// too), and nothing else.
func CleanTopology(ctx context.Context) error {
	out, err := ipOutput(ctx, "netns", "list")
	if err != nil {
		return err
	}
	var errs []error
	for line := range strings.Lines(out) {
		name, _, _ := strings.Cut(strings.TrimSpace(line), " ")
		if strings.HasPrefix(name, hostPrefix) {
			errs = append(errs, ip(ctx, "netns", "del", name))
		}
	}
	links, err := ipOutput(ctx, "-o", "link", "show")
	if err != nil {
		return err
	}
	for line := range strings.Lines(links) {
		// "7: tally-h1@if2: <...>": the name ends at '@' or ':'.
		fields := strings.Fields(line)
		if len(fields) < 2 {
			continue
		}
		name, _, _ := strings.Cut(strings.TrimSuffix(fields[1], ":"), "@")
		if name == bridgeName || strings.HasPrefix(name, hostPrefix) {
			// A namespace's veth goes away with it, after a moment: gone is fine.
			if err := ip(ctx, "link", "del", name); err != nil && !strings.Contains(err.Error(), "Cannot find device") {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// Close deletes the topology.
func (t *Topology) Close(ctx context.Context) error {
	err := CleanTopology(ctx)
	if t.lock != nil {
		err = errors.Join(err, t.lock.Unlock())
		t.lock = nil
	}
	return err
}

// Cut takes the host's link down: a partition (nothing passes either way, connections hang).
func (t *Topology) Cut(ctx context.Context, h Host) error {
	return ip(ctx, "link", "set", h.Name, "down")
}

// Mend brings the host's link back up.
func (t *Topology) Mend(ctx context.Context, h Host) error {
	return ip(ctx, "link", "set", h.Name, "master", bridgeName, "up")
}

// Command returns the path and arguments that run path with args inside the host's namespace.
func (h Host) Command(path string, args ...string) (string, []string) {
	ipPath, err := exec.LookPath("ip")
	if err != nil {
		ipPath = "/usr/sbin/ip"
	}
	return ipPath, append([]string{"netns", "exec", h.Name, path}, args...)
}

func ip(ctx context.Context, args ...string) error {
	_, err := ipOutput(ctx, args...)
	return err
}

func ipOutput(ctx context.Context, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, ipTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ip", args...).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("ip %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}
