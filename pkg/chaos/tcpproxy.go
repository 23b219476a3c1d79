package chaos

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// TCPProxy is a real TCP proxy on loopback that can hold back some of the server's replies: the
// ledger reaches PostgreSQL through it, so that a scenario can delay the acknowledgments of its
// commits (as a slow synchronous replica would) and kill the ledger between a batch's commit and
// its cache update.
type TCPProxy struct {
	lis    net.Listener
	target string
	delay  atomic.Pointer[replyDelay]

	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
	// clients maps the local address of each connection to the target to the client's address.
	clients map[string]string
}

// StartTCPProxy listens on a free loopback port and forwards every connection to target.
func StartTCPProxy(target string) (*TCPProxy, error) {
	return StartTCPProxyOn("127.0.0.1:0", target, net.ListenConfig{})
}

// StartTCPProxyOn listens on addr with lc (its KeepAliveConfig applies to the clients'
// connections) and forwards every connection to target.
func StartTCPProxyOn(addr, target string, lc net.ListenConfig) (*TCPProxy, error) {
	lis, err := lc.Listen(context.Background(), "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("tcp proxy on %s: %w", addr, err)
	}
	p := &TCPProxy{lis: lis, target: target, conns: map[net.Conn]struct{}{}, clients: map[string]string{}}
	go p.accept()
	return p, nil
}

// Client returns the address of the client whose connection reaches the target from upstream
// (the proxy's local address toward the target, as the target sees it as its peer).
func (p *TCPProxy) Client(upstream string) (string, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	c, ok := p.clients[upstream]
	return c, ok
}

// Addr is the proxy's host:port.
func (p *TCPProxy) Addr() string { return p.lis.Addr().String() }

// replyDelay holds back the replies that contain match.
type replyDelay struct {
	match []byte
	d     time.Duration
}

// DelayReplies holds back by d, from now on, every chunk the server sends that contains match;
// d = 0 stops it.
func (p *TCPProxy) DelayReplies(match []byte, d time.Duration) {
	if d <= 0 {
		p.delay.Store(nil)
		return
	}
	p.delay.Store(&replyDelay{match: append([]byte(nil), match...), d: d})
}

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
	p.mu.Lock()
	p.clients[up.LocalAddr().String()] = client.RemoteAddr().String()
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		delete(p.clients, up.LocalAddr().String())
		p.mu.Unlock()
	}()
	done := make(chan struct{}, 2)
	go func() {
		_, _ = io.Copy(up, client)
		done <- struct{}{}
	}()
	go func() {
		buf := make([]byte, 32<<10)
		for {
			n, err := up.Read(buf)
			if n > 0 {
				if d := p.delay.Load(); d != nil && bytes.Contains(buf[:n], d.match) {
					time.Sleep(d.d) // the injected delay itself
				}
				if _, werr := client.Write(buf[:n]); werr != nil {
					break
				}
			}
			if err != nil {
				break
			}
		}
		done <- struct{}{}
	}()
	<-done
}
