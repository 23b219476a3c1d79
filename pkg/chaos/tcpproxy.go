package chaos

import (
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// TCPProxy is a real TCP proxy on loopback that can slow down what its clients send: the ledger
// reaches Redis through it, so that a scenario can widen the moment between a batch's commit and
// its cache update.
type TCPProxy struct {
	lis     net.Listener
	target  string
	latency atomic.Int64 // nanoseconds added before each chunk sent upstream

	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
}

// StartTCPProxy listens on a free loopback port and forwards every connection to target.
func StartTCPProxy(target string) (*TCPProxy, error) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("tcp proxy: %w", err)
	}
	p := &TCPProxy{lis: lis, target: target, conns: map[net.Conn]struct{}{}}
	go p.accept()
	return p, nil
}

// Addr is the proxy's host:port.
func (p *TCPProxy) Addr() string { return p.lis.Addr().String() }

// SetLatency delays everything the clients send by d from now on (0: none).
func (p *TCPProxy) SetLatency(d time.Duration) { p.latency.Store(int64(d)) }

// Close stops the proxy and drops its connections.
func (p *TCPProxy) Close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	_ = p.lis.Close()
	for c := range p.conns {
		_ = c.Close()
	}
}

func (p *TCPProxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *TCPProxy) untrack(c net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.conns, c)
}

func (p *TCPProxy) accept() {
	for {
		client, err := p.lis.Accept()
		if err != nil {
			return
		}
		go p.forward(client)
	}
}

// forward copies between client and a new connection to the target until either side ends; a
// target that refuses the connection drops the client's (as a dead server would).
func (p *TCPProxy) forward(client net.Conn) {
	defer client.Close()
	up, err := net.DialTimeout("tcp", p.target, time.Second)
	if err != nil {
		return
	}
	defer up.Close()
	if !p.track(client) || !p.track(up) {
		return
	}
	defer p.untrack(client)
	defer p.untrack(up)
	done := make(chan struct{}, 2)
	go func() {
		buf := make([]byte, 32<<10)
		for {
			n, err := client.Read(buf)
			if n > 0 {
				if d := time.Duration(p.latency.Load()); d > 0 {
					time.Sleep(d) // the injected latency itself
				}
				if _, werr := up.Write(buf[:n]); werr != nil {
					break
				}
			}
			if err != nil {
				break
			}
		}
		done <- struct{}{}
	}()
	go func() {
		_, _ = io.Copy(client, up)
		done <- struct{}{}
	}()
	<-done
}
