package config

import (
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestReplicaName(t *testing.T) {
	t.Parallel()
	a, b := ReplicaName("metering"), ReplicaName("metering")
	require.NotEqual(t, a, b)
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "metering"
	}
	require.True(t, strings.HasPrefix(a, host+"-"), a)
	require.Len(t, a, len(host)+1+8)
}
