package localstack

import (
	"context"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestRedisClusterFailover(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	c, err := StartRedisCluster(ctx, RedisClusterConfig{Dir: t.TempDir()})
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Stop(context.Background()) })
	require.Len(t, c.Nodes(), 6)
	require.Equal(t, "redis+cluster://"+strings.Join(c.Addrs(), ","), c.URL())
	role := func(n *Redis) string {
		out, err := exec.CommandContext(ctx, "redis-cli", "-p", strconv.Itoa(n.Port()), "ROLE").Output()
		require.NoError(t, err)
		return strings.SplitN(string(out), "\n", 2)[0]
	}
	// redis-cli --cluster create makes the first nodes the masters.
	first := c.Nodes()[0]
	require.Equal(t, "master", role(first))
	require.Same(t, first, c.Node(first.Addr()))

	masters, err := c.Masters(ctx)
	require.NoError(t, err)
	require.Len(t, masters, 3)
	require.Contains(t, masters, first)

	require.NoError(t, first.Kill(ctx))
	require.NoError(t, c.WaitHealthy(ctx), "a replica takes over the killed master's slots")
	promoted := 0
	for _, n := range c.Nodes()[1:] {
		if role(n) == "master" {
			promoted++
		}
	}
	require.Equal(t, 3, promoted, "the killed master's replica was promoted")
	masters, err = c.Masters(ctx)
	require.NoError(t, err)
	require.Len(t, masters, 3)
	require.NotContains(t, masters, first)

	require.NoError(t, first.Start(ctx))
	require.Eventually(t, func() bool { return role(first) == "slave" }, time.Minute, 50*time.Millisecond, "the old master rejoins as a replica")
	require.NoError(t, c.WaitHealthy(ctx))
}
