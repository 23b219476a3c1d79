package test

import (
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// tcpProxy is a real network fault between payments and a dependency: a TCP forwarder on a fixed
// 127.0.0.1 port that can go down (its port refuses connections and every open connection is
// cut), come back on the same port, and send its traffic to another upstream (a restarted ledger).
type tcpProxy struct {
	t    *testing.T
	Addr string

	mu       sync.Mutex
	upstream string
	lis      net.Listener
	conns    map[net.Conn]struct{}
	wg       sync.WaitGroup
}

func startTCPProxy(t *testing.T, upstream string) *tcpProxy {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	p := &tcpProxy{t: t, Addr: lis.Addr().String(), upstream: upstream, conns: map[net.Conn]struct{}{}}
	p.serve(lis)
	t.Cleanup(func() {
		p.down()
		p.wg.Wait()
	})
	return p
}

// URL is the proxy as an http base URL.
func (p *tcpProxy) URL() string { return "http://" + p.Addr }

// setUpstream sends new connections to addr.
func (p *tcpProxy) setUpstream(addr string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.upstream = addr
}

// down closes the port and cuts every open connection: callers see connections refused.
func (p *tcpProxy) down() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.lis != nil {
		_ = p.lis.Close()
		p.lis = nil
	}
	for c := range p.conns {
		_ = c.Close()
	}
}

// up listens on the same port again.
func (p *tcpProxy) up() {
	p.t.Helper()
	var lis net.Listener
	require.Eventually(p.t, func() bool {
		var err error
		lis, err = net.Listen("tcp", p.Addr)
		return err == nil
	}, 10*time.Second, 10*time.Millisecond, "re-listening on %s", p.Addr)
	p.serve(lis)
}

func (p *tcpProxy) serve(lis net.Listener) {
	p.mu.Lock()
	p.lis = lis
	p.mu.Unlock()
	p.wg.Go(func() {
		for {
			c, err := lis.Accept()
			if err != nil {
				return // closed by down
			}
			p.wg.Go(func() { p.forward(c) })
		}
	})
}

func (p *tcpProxy) forward(c net.Conn) {
	p.mu.Lock()
	if p.lis == nil {
		p.mu.Unlock()
		_ = c.Close()
		return
	}
	upstream := p.upstream
	p.conns[c] = struct{}{}
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		delete(p.conns, c)
		p.mu.Unlock()
		_ = c.Close()
	}()
	u, err := net.DialTimeout("tcp", upstream, 5*time.Second)
	if err != nil {
		return // the upstream is down: the caller's connection is closed
	}
	p.mu.Lock()
	p.conns[u] = struct{}{}
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		delete(p.conns, u)
		p.mu.Unlock()
		_ = u.Close()
	}()
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src) // until either side closes, or down cuts both
		// Half-close so that the other direction finishes too.
		if tc, ok := dst.(*net.TCPConn); ok {
			_ = tc.CloseWrite()
		}
		done <- struct{}{}
	}
	go pipe(u, c)
	go pipe(c, u)
	<-done
	<-done
}
