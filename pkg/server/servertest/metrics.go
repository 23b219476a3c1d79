package servertest

import (
	"fmt"

	"github.com/tallyhq/tally/pkg/localstack"
)

// MetricsAddr picks a free 127.0.0.1 address for a test replica's Prometheus endpoint (its
// MetricsAddr) and returns it with the URL of its /metrics.
func MetricsAddr() (addr, url string, err error) {
	port, err := localstack.FreePort()
	if err != nil {
		return "", "", err
	}
	addr = fmt.Sprintf("127.0.0.1:%d", port)
	return addr, "http://" + addr + "/metrics", nil
}
