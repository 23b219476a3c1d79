package chaos

import (
	"os"
	"os/exec"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestHostsShort is the short form of make scale-test: a replica of every service on each of
// three hosts (network namespaces), the notifications lease holder's host killed under load,
// then the PostgreSQL primary crashed and its synchronous standby promoted, then organizations
// moved between the ledger's two shards and back. It needs root for ip
// netns; without it (or with -short) it is skipped, and says so.
func TestHostsShort(t *testing.T) {
	if testing.Short() {
		t.Skip("the hosts suite runs three replicas of the platform; skipped with -short")
	}
	if os.Geteuid() != 0 {
		t.Skip("the hosts suite creates network namespaces: it needs root (make scale-test)")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("the hosts suite needs ip (iproute2)")
	}
	rep, err := Run(t.Context(), Options{Short: true, Stack: StackConfig{Dir: t.TempDir(), Hosts: 3}, Out: &testLog{t: t}})
	requirePassed(t, rep, err)
	out, err := exec.CommandContext(t.Context(), "ip", "netns", "list").CombinedOutput()
	require.NoError(t, err)
	require.NotContains(t, string(out), hostPrefix, "the topology was not removed")
}

func TestTopologyCleansUp(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("creating network namespaces needs root")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs ip (iproute2)")
	}
	// A crashed run's leftovers (a namespace of a larger topology, a stray veth) are removed by
	// the next start.
	stale := hostName(7)
	require.NoError(t, ip(t.Context(), "netns", "add", stale))
	require.NoError(t, ip(t.Context(), "link", "add", hostName(8), "type", "veth", "peer", "name", hostName(8)+"p"))
	topo, err := StartTopology(t.Context(), 3)
	require.NoError(t, err)
	require.Len(t, topo.Hosts, 3)
	list, err := ipOutput(t.Context(), "netns", "list")
	require.NoError(t, err)
	require.NotContains(t, list, stale)
	links, err := ipOutput(t.Context(), "-o", "link", "show")
	require.NoError(t, err)
	require.NotContains(t, links, hostName(8))
	// A cut link is down, a mended one up.
	require.NoError(t, topo.Cut(t.Context(), topo.Hosts[1]))
	state, err := ipOutput(t.Context(), "-o", "link", "show", topo.Hosts[1].Name)
	require.NoError(t, err)
	require.Contains(t, state, "state DOWN")
	require.NoError(t, topo.Mend(t.Context(), topo.Hosts[1]))
	state, err = ipOutput(t.Context(), "-o", "link", "show", topo.Hosts[1].Name)
	require.NoError(t, err)
	require.NotContains(t, state, "state DOWN")
	require.NoError(t, topo.Close(t.Context()))
	out, err := exec.CommandContext(t.Context(), "ip", "-o", "link", "show").CombinedOutput()
	require.NoError(t, err)
	require.NotContains(t, string(out), bridgeName)
	require.NotContains(t, string(out), hostPrefix)
}

// TestHostScenariosMoveAnOrganization checks that the host scenarios, short and full, include the
// shard move: the hosts topology runs its ledger on two shards for it.
func TestHostScenariosMoveAnOrganization(t *testing.T) {
	for _, short := range []bool{false, true} {
		scs, err := selectFrom(HostScenarios(), short, nil)
		require.NoError(t, err)
		names := make([]string, len(scs))
		for i, sc := range scs {
			names[i] = sc.Name
		}
		require.Contains(t, names, "shard-move", "no host scenario moves an organization between shards (short %t)", short)
	}
}
