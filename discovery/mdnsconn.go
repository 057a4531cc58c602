package discovery

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// mDNS addresses (RFC 6762 §3).
var (
	mdnsGroup4 = net.IPv4(224, 0, 0, 251)
	mdnsGroup6 = net.ParseIP("ff02::fb")
)

const (
	mdnsPort      = 5353
	maxPacketSize = 9000 // RFC 6762 §17
)

// packet is one datagram as the readers hand it to the owner goroutine.
type packet struct {
	data    []byte
	ifIndex int
	src     *net.UDPAddr
	at      time.Time
}

// mdnsConn is a pair of multicast sockets on port 5353 (IPv4 required,
// IPv6 when the system has it). Go binds a multicast listen address to the
// wildcard with SO_REUSEADDR, so it shares the port with avahi, python
// zeroconf and grandcat/zeroconf. Only the owner goroutine calls setIfaces
// and send; the readers only read. Packets arriving on interfaces that were
// not selected are passed on with their index; the owner drops them.
type mdnsConn struct {
	log    *slog.Logger
	v4     *ipv4.PacketConn
	v6     *ipv6.PacketConn
	joined map[int]net.Interface
	wg     sync.WaitGroup
}

func openMDNS(log *slog.Logger) (*mdnsConn, error) {
	c := &mdnsConn{log: log, joined: map[int]net.Interface{}}
	u4, err := net.ListenUDP("udp4", &net.UDPAddr{IP: mdnsGroup4, Port: mdnsPort})
	if err != nil {
		return nil, fmt.Errorf("mdns: listen on udp4 port %d: %w", mdnsPort, err)
	}
	c.v4 = ipv4.NewPacketConn(u4)
	if err := c.v4.SetControlMessage(ipv4.FlagInterface, true); err != nil {
		u4.Close()
		return nil, fmt.Errorf("mdns: udp4 control messages: %w", err)
	}
	_ = c.v4.SetMulticastTTL(255) // RFC 6762 §11
	_ = c.v4.SetMulticastLoopback(true)
	if u6, err := net.ListenUDP("udp6", &net.UDPAddr{IP: mdnsGroup6, Port: mdnsPort}); err == nil {
		c.v6 = ipv6.NewPacketConn(u6)
		if err := c.v6.SetControlMessage(ipv6.FlagInterface, true); err != nil {
			u6.Close()
			c.v6 = nil
		} else {
			_ = c.v6.SetMulticastHopLimit(255)
			_ = c.v6.SetMulticastLoopback(true)
		}
	} else {
		log.Debug("mdns: no IPv6", "err", err)
	}
	return c, nil
}

// start runs the readers; they stop when close is called.
func (c *mdnsConn) start(out chan<- packet, done <-chan struct{}) {
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		buf := make([]byte, maxPacketSize)
		for {
			n, cm, src, err := c.v4.ReadFrom(buf)
			if err != nil {
				if errors.Is(err, net.ErrClosed) {
					return
				}
				continue
			}
			c.deliver(out, done, buf[:n], cm != nil, ifIndex4(cm), src)
		}
	}()
	if c.v6 != nil {
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			buf := make([]byte, maxPacketSize)
			for {
				n, cm, src, err := c.v6.ReadFrom(buf)
				if err != nil {
					if errors.Is(err, net.ErrClosed) {
						return
					}
					continue
				}
				idx := 0
				if cm != nil {
					idx = cm.IfIndex
				}
				c.deliver(out, done, buf[:n], cm != nil, idx, src)
			}
		}()
	}
}

func ifIndex4(cm *ipv4.ControlMessage) int {
	if cm == nil {
		return 0
	}
	return cm.IfIndex
}

func (c *mdnsConn) deliver(out chan<- packet, done <-chan struct{}, b []byte, hasCM bool, idx int, src net.Addr) {
	ua, ok := src.(*net.UDPAddr)
	if !ok || !hasCM || idx == 0 {
		return
	}
	p := packet{data: append([]byte(nil), b...), ifIndex: idx, src: ua, at: time.Now()}
	select {
	case out <- p:
	case <-done:
	}
}

// setIfaces joins the mDNS groups on list and leaves them on interfaces no
// longer in it.
func (c *mdnsConn) setIfaces(list []netIface) {
	want := map[int]net.Interface{}
	for _, n := range list {
		want[n.iface.Index] = n.iface
	}
	for idx, ifi := range c.joined {
		if _, ok := want[idx]; !ok {
			_ = c.v4.LeaveGroup(&ifi, &net.UDPAddr{IP: mdnsGroup4})
			if c.v6 != nil {
				_ = c.v6.LeaveGroup(&ifi, &net.UDPAddr{IP: mdnsGroup6})
			}
			delete(c.joined, idx)
		}
	}
	for idx, ifi := range want {
		if _, ok := c.joined[idx]; ok {
			continue
		}
		if err := c.v4.JoinGroup(&ifi, &net.UDPAddr{IP: mdnsGroup4}); err != nil {
			c.log.Debug("mdns: join IPv4 group", "iface", ifi.Name, "err", err)
		}
		if c.v6 != nil {
			if err := c.v6.JoinGroup(&ifi, &net.UDPAddr{IP: mdnsGroup6}); err != nil {
				c.log.Debug("mdns: join IPv6 group", "iface", ifi.Name, "err", err)
			}
		}
		c.joined[idx] = ifi
	}
}

// send multicasts b on every joined interface.
func (c *mdnsConn) send(b []byte) {
	for idx, ifi := range c.joined {
		if _, err := c.v4.WriteTo(b, &ipv4.ControlMessage{IfIndex: idx}, &net.UDPAddr{IP: mdnsGroup4, Port: mdnsPort}); err != nil {
			c.log.Debug("mdns: send IPv4", "iface", ifi.Name, "err", err)
		}
		if c.v6 != nil {
			if _, err := c.v6.WriteTo(b, &ipv6.ControlMessage{IfIndex: idx}, &net.UDPAddr{IP: mdnsGroup6, Port: mdnsPort}); err != nil {
				c.log.Debug("mdns: send IPv6", "iface", ifi.Name, "err", err)
			}
		}
	}
}

// close closes the sockets and waits for the readers.
func (c *mdnsConn) close() {
	c.v4.Close()
	if c.v6 != nil {
		c.v6.Close()
	}
	c.wg.Wait()
}
