package rpcclient

import (
	"fmt"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/resolver"
)

// StaticScheme names the resolver of a fixed list of addresses: static:///host1:port,host2:port.
// A target with commas and no scheme (host1:port,host2:port) means the same.
const StaticScheme = "static"

// defaultServiceConfig spreads the calls of a connection over every address its resolver returns
// (each DNS record of a headless Service, each address of a static list) instead of gRPC's default
// pick_first, which sends them all to one replica.
const defaultServiceConfig = `{"loadBalancingConfig": [{"round_robin": {}}]}`

// clientKeepalive pings a connection silent for 20s (the servers accept pings every 10s,
// pkg/server) and drops it when the ping is not answered within 10s, so a replica on a lost or
// partitioned host leaves the rotation in about 30s instead of when the kernel gives up on TCP.
var clientKeepalive = keepalive.ClientParameters{Time: 20 * time.Second, Timeout: 10 * time.Second, PermitWithoutStream: true}

// balanceOptions are the load-balancing, resolver and keepalive options of every connection.
func balanceOptions() []grpc.DialOption {
	return []grpc.DialOption{
		grpc.WithDefaultServiceConfig(defaultServiceConfig),
		grpc.WithResolvers(staticBuilder{}),
		grpc.WithKeepaliveParams(clientKeepalive),
	}
}

// normalizeTarget turns a bare comma-separated list of addresses into a static:/// target.
func normalizeTarget(target string) string {
	if strings.Contains(target, ",") && !strings.Contains(target, "://") {
		return StaticScheme + ":///" + target
	}
	return target
}

// staticBuilder resolves static:///a,b,c to the addresses a, b and c, once.
type staticBuilder struct{}

func (staticBuilder) Scheme() string { return StaticScheme }

func (staticBuilder) Build(target resolver.Target, cc resolver.ClientConn, _ resolver.BuildOptions) (resolver.Resolver, error) {
	var addrs []resolver.Address
	for _, a := range strings.Split(target.Endpoint(), ",") {
		if a = strings.TrimSpace(a); a != "" {
			addrs = append(addrs, resolver.Address{Addr: a})
		}
	}
	if len(addrs) == 0 {
		return nil, fmt.Errorf("static target %q lists no address", target.URL.String())
	}
	if err := cc.UpdateState(resolver.State{Addresses: addrs}); err != nil {
		return nil, fmt.Errorf("static target %q: %w", target.URL.String(), err)
	}
	return staticResolver{}, nil
}

// staticResolver has nothing to re-resolve: the list is the target.
type staticResolver struct{}

func (staticResolver) ResolveNow(resolver.ResolveNowOptions) {}
func (staticResolver) Close()                                {}
