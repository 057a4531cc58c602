// Package netfault makes network faults for tests: a TCP proxy that can
// cut the path between a client and a server, as a dead Wi-Fi link would.
package netfault

import (
	"net"
	"sync"
	"sync/atomic"
)

// Proxy forwards TCP connections to a target. Blocked, it holds every byte
// of the open connections (the path goes silent, nothing is closed) and
// drops new connections. Safe for concurrent use.
type Proxy struct {
	ln      net.Listener
	target  string
	blocked atomic.Bool
	mu      sync.Mutex    // guards wake
	wake    chan struct{} // closed on Unblock
}

// Listen starts a proxy on a loopback port in front of target.
func Listen(target string) (*Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &Proxy{ln: ln, target: target, wake: make(chan struct{})}
	go p.accept()
	return p, nil
}

// Addr is the proxy's address (host:port).
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Close stops accepting and releases held connections.
func (p *Proxy) Close() error {
	p.Unblock()
	return p.ln.Close()
}

func (p *Proxy) accept() {
	for {
		in, err := p.ln.Accept()
		if err != nil {
			return
		}
		if p.blocked.Load() {
			in.Close()
			continue
		}
		out, err := net.Dial("tcp", p.target)
		if err != nil {
			in.Close()
			continue
		}
		go p.pipe(in, out)
		go p.pipe(out, in)
	}
}

func (p *Proxy) pipe(dst, src net.Conn) {
	defer dst.Close()
	defer src.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if err != nil {
			return
		}
		if p.blocked.Load() {
			p.mu.Lock()
			w := p.wake
			p.mu.Unlock()
			<-w
			return // a connection that lived through an outage is dead
		}
		if _, err := dst.Write(buf[:n]); err != nil {
			return
		}
	}
}

// Block cuts the path.
func (p *Proxy) Block() {
	p.mu.Lock()
	p.wake = make(chan struct{})
	p.mu.Unlock()
	p.blocked.Store(true)
}

// Unblock restores it for new connections.
func (p *Proxy) Unblock() {
	if p.blocked.CompareAndSwap(true, false) {
		p.mu.Lock()
		close(p.wake)
		p.mu.Unlock()
	}
}
