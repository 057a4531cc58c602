package discovery

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/netip"
	"reflect"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"

	"github.com/roomcast/roomcast/protocol/httpapi"
)

// Speaker is one resolved speaker as a Browser sees it (the JSON of GET
// /v1/speakers, declared in httpapi).
type Speaker = httpapi.Speaker

// BrowserOptions configure a Browser.
type BrowserOptions struct {
	Interfaces InterfaceSpec
	Logger     *slog.Logger  // default: discard
	Poll       time.Duration // how often interfaces are re-read; default 3 s

	service string // default ServiceType; tests may change it
}

// Browser lists the speakers announced on the selected interfaces.
//
// Run owns the socket and the record cache; Speakers and Changes may be
// called from any goroutine at any time (before Run they report nothing).
// It queries at start, then at 1, 2, 4 ... 60 s intervals (RFC 6762 §5.2),
// asks for whatever an instance lacks (SRV, TXT, addresses), refreshes
// records at 80% of their TTL, drops records on goodbye (TTL 0) after one
// second, and drops an instance that did not answer several periodic
// queries over at least 30 s.
type Browser struct {
	opts    BrowserOptions
	log     *slog.Logger
	snap    atomic.Pointer[browseSnap]
	changes chan struct{}
}

type browseSnap struct {
	speakers  []Speaker
	instances []instanceInfo
}

// NewBrowser checks the options.
func NewBrowser(opts BrowserOptions) (*Browser, error) {
	if opts.Poll < 0 {
		return nil, errors.New("browser: negative poll interval")
	}
	if opts.Poll == 0 {
		opts.Poll = 3 * time.Second
	}
	if opts.service == "" {
		opts.service = ServiceType
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	b := &Browser{opts: opts, log: log, changes: make(chan struct{}, 1)}
	b.snap.Store(&browseSnap{})
	return b, nil
}

// Speakers is the current list, sorted by name. The caller owns the slice.
func (b *Browser) Speakers() []Speaker {
	s := b.snap.Load().speakers
	out := make([]Speaker, len(s))
	for i, sp := range s {
		sp.Addrs = append([]netip.Addr(nil), sp.Addrs...)
		sp.Interfaces = append([]string(nil), sp.Interfaces...)
		out[i] = sp
	}
	return out
}

// instances is every announced instance, valid or not (read-only slice).
func (b *Browser) instances() []instanceInfo { return b.snap.Load().instances }

// Changes receives a value (coalesced) whenever the result of Speakers
// may have changed.
func (b *Browser) Changes() <-chan struct{} { return b.changes }

const (
	firstQueryInterval = time.Second
	maxQueryInterval   = 60 * time.Second
	askAgainAfter      = time.Second
	tick               = 200 * time.Millisecond
)

// Run browses until ctx is done; it returns nil then. It fails only if the
// mDNS port cannot be opened.
func (b *Browser) Run(ctx context.Context) error {
	if b.opts.Interfaces.Off {
		<-ctx.Done()
		return nil
	}
	mc, err := openMDNS(b.log)
	if err != nil {
		return err
	}
	done := make(chan struct{})
	pkts := make(chan packet, 64)
	mc.start(pkts, done)
	defer func() {
		close(done)
		mc.close()
	}()

	c := newCache(b.opts.service + ".local.")
	var (
		ifs       []netIface
		sig       string
		ifByIndex = map[int]string{}
		interval  = firstQueryInterval
		nextQuery time.Time
		lastPoll  time.Time
		asked     = map[question]time.Time{}
	)
	poll := func(now time.Time) {
		lastPoll = now
		list, err := b.opts.Interfaces.resolve()
		if err != nil {
			b.log.Warn("mdns browse: interfaces", "err", err)
			return
		}
		if s := signature(list); s != sig {
			sig, ifs = s, list
			mc.setIfaces(ifs)
			keep := map[int]bool{}
			ifByIndex = map[int]string{}
			for _, n := range ifs {
				keep[n.iface.Index] = true
				ifByIndex[n.iface.Index] = n.iface.Name
			}
			c.dropIfaces(keep)
			interval, nextQuery = firstQueryInterval, now // query again at once
			b.log.Debug("mdns browse: interfaces", "ifaces", ifaceNames(ifs))
		}
	}
	t := time.NewTicker(tick)
	defer t.Stop()
	poll(time.Now())
	for {
		now := time.Now()
		if now.Sub(lastPoll) >= b.opts.Poll {
			poll(now)
		}
		if len(ifs) > 0 && !now.Before(nextQuery) {
			c.periodicQuery(now)
			b.send(mc, question{name: b.opts.service + ".local.", rrtype: dns.TypePTR})
			nextQuery = now.Add(interval)
			interval = min(interval*2, maxQueryInterval)
		}
		for _, q := range c.needs(now) {
			if now.Sub(asked[q]) >= askAgainAfter {
				asked[q] = now
				b.send(mc, q)
			}
		}
		for q, at := range asked {
			if now.Sub(at) > time.Minute {
				delete(asked, q)
			}
		}
		c.expire(now)
		if c.overflow {
			b.log.Warn("mdns browse: record cache full; ignoring new records", "limit", maxCacheRecords)
			c.overflow = false
		}
		b.publish(c)

		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		case p := <-pkts:
			b.handle(c, p, ifByIndex)
			// Take whatever else is queued before recomputing.
			for more := true; more; {
				select {
				case p := <-pkts:
					b.handle(c, p, ifByIndex)
				default:
					more = false
				}
			}
		}
	}
}

func (b *Browser) handle(c *cache, p packet, ifByIndex map[int]string) {
	name, ok := ifByIndex[p.ifIndex]
	if !ok || p.src.Port != mdnsPort { // RFC 6762 §6: responses come from port 5353
		return
	}
	var m dns.Msg
	if err := m.Unpack(p.data); err != nil {
		return
	}
	c.add(&m, p.ifIndex, name, p.at)
}

func (b *Browser) send(mc *mdnsConn, q question) {
	m := new(dns.Msg)
	m.Question = []dns.Question{{Name: q.name, Qtype: q.rrtype, Qclass: dns.ClassINET}}
	buf, err := m.Pack()
	if err != nil {
		b.log.Debug("mdns browse: pack query", "name", q.name, "err", err)
		return
	}
	mc.send(buf)
}

// publish stores a new snapshot and signals Changes when it differs.
func (b *Browser) publish(c *cache) {
	sps, all := c.speakers()
	old := b.snap.Load()
	if reflect.DeepEqual(old.speakers, sps) && reflect.DeepEqual(old.instances, all) {
		return
	}
	b.snap.Store(&browseSnap{speakers: sps, instances: all})
	select {
	case b.changes <- struct{}{}:
	default:
	}
}
