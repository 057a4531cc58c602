package discovery

import (
	"cmp"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// Cache limits: records from the LAN are hostile input.
const (
	maxCacheRecords = 2048
	maxTTL          = 2 * time.Hour
	goodbyeGrace    = time.Second // RFC 6762 §10.1
	poofMisses      = 3           // unanswered periodic queries before a PTR is dropped
	poofMinAge      = 30 * time.Second
)

const cacheFlushBit = 1 << 15

// recKey identifies one cached record; the same record seen on two
// interfaces is two entries.
type recKey struct {
	ifIndex int
	name    string // lower case, presentation format
	rrtype  uint16
	rdata   string
}

type record struct {
	ifName   string
	name     string // as received
	ttl      time.Duration
	received time.Time
	expires  time.Time
	missed   int // PTR only: periodic queries since it was last seen

	target string     // PTR: instance FQDN; SRV: host FQDN
	port   int        // SRV
	txt    []string   // TXT, unescaped
	addr   netip.Addr // A / AAAA
}

// cache holds the records of one service type. It is owned by the
// browser's Run goroutine: no locks.
type cache struct {
	service  string // "_roomcast._tcp.local." lower case
	recs     map[recKey]*record
	overflow bool // the limit was hit since the last report
}

func newCache(service string) *cache {
	return &cache{service: strings.ToLower(dns.Fqdn(service)), recs: map[recKey]*record{}}
}

// instanceInfo is one announced instance, valid or not: what the
// advertiser checks names against.
type instanceInfo struct {
	Name string
	ID   string // empty when the TXT record is missing or invalid
}

// add takes the records of one mDNS response received at now on an
// interface. It keeps only what belongs to the service: PTRs of the
// service name, SRV/TXT of its instances, A/AAAA of hosts those SRVs name.
func (c *cache) add(msg *dns.Msg, ifIndex int, ifName string, now time.Time) {
	if !msg.Response || msg.Opcode != 0 || msg.Rcode != 0 {
		return
	}
	rrs := make([]dns.RR, 0, len(msg.Answer)+len(msg.Ns)+len(msg.Extra))
	rrs = append(rrs, msg.Answer...)
	rrs = append(rrs, msg.Ns...)
	rrs = append(rrs, msg.Extra...)
	// Pass 1: service records; pass 2: addresses of SRV targets (known
	// before this packet or named in it).
	for pass := 1; pass <= 2; pass++ {
		for _, rr := range rrs {
			h := rr.Header()
			if h.Class&^cacheFlushBit != dns.ClassINET {
				continue
			}
			name := strings.ToLower(h.Name)
			r := &record{ifName: ifName, name: h.Name, received: now}
			var rdata string
			switch v := rr.(type) {
			case *dns.PTR:
				if pass != 1 || name != c.service || !c.isInstance(v.Ptr) {
					continue
				}
				r.target, rdata = v.Ptr, strings.ToLower(v.Ptr)
			case *dns.SRV:
				if pass != 1 || !c.isInstance(h.Name) {
					continue
				}
				r.target, r.port = v.Target, int(v.Port)
				rdata = strconv.Itoa(int(v.Port)) + " " + strings.ToLower(v.Target)
			case *dns.TXT:
				if pass != 1 || !c.isInstance(h.Name) || len(v.Txt) > maxTXTStrings {
					continue
				}
				txt := make([]string, 0, len(v.Txt))
				ok := true
				for _, s := range v.Txt {
					u, err := unescapeString(s)
					if err != nil {
						ok = false
						break
					}
					txt = append(txt, u)
				}
				if !ok {
					continue
				}
				r.txt, rdata = txt, strings.Join(txt, "\x00")
			case *dns.A:
				if pass != 2 || !c.isTarget(name) {
					continue
				}
				a, ok := netip.AddrFromSlice(v.A.To4())
				if !ok {
					continue
				}
				r.addr, rdata = a, a.String()
			case *dns.AAAA:
				if pass != 2 || !c.isTarget(name) {
					continue
				}
				a, ok := netip.AddrFromSlice(v.AAAA.To16())
				if !ok || a.Is4In6() {
					continue
				}
				r.addr, rdata = a, a.String()
			default:
				continue
			}
			k := recKey{ifIndex: ifIndex, name: name, rrtype: h.Rrtype, rdata: rdata}
			c.put(k, r, h, now)
		}
	}
}

func (c *cache) put(k recKey, r *record, h *dns.RR_Header, now time.Time) {
	if h.Ttl == 0 { // goodbye
		if old, ok := c.recs[k]; ok && old.expires.After(now.Add(goodbyeGrace)) {
			old.expires = now.Add(goodbyeGrace)
		}
		return
	}
	if h.Class&cacheFlushBit != 0 {
		// RFC 6762 §10.2: other records of this name and type received
		// more than a second ago go away in a second.
		for ok, old := range c.recs {
			if ok.ifIndex == k.ifIndex && ok.name == k.name && ok.rrtype == k.rrtype && ok.rdata != k.rdata &&
				now.Sub(old.received) > time.Second && old.expires.After(now.Add(goodbyeGrace)) {
				old.expires = now.Add(goodbyeGrace)
			}
		}
	}
	ttl := min(time.Duration(h.Ttl)*time.Second, maxTTL)
	r.ttl, r.expires = ttl, now.Add(ttl)
	if _, exists := c.recs[k]; !exists && len(c.recs) >= maxCacheRecords {
		c.overflow = true
		return
	}
	c.recs[k] = r
}

// isInstance says whether name is <one label>.<service>.
func (c *cache) isInstance(name string) bool {
	label, rest, err := splitFirstLabel(name)
	return err == nil && label != "" && len(label) <= maxLabel && strings.EqualFold(rest, c.service)
}

// isTarget says whether a cached SRV points at host.
func (c *cache) isTarget(host string) bool {
	for k, r := range c.recs {
		if k.rrtype == dns.TypeSRV && strings.EqualFold(r.target, host) {
			return true
		}
	}
	return false
}

// expire drops records past their time; it reports whether any went.
func (c *cache) expire(now time.Time) bool {
	changed := false
	for k, r := range c.recs {
		if !now.Before(r.expires) {
			delete(c.recs, k)
			changed = true
		}
	}
	return changed
}

// dropIfaces forgets records of interfaces no longer selected.
func (c *cache) dropIfaces(keep map[int]bool) {
	for k := range c.recs {
		if !keep[k.ifIndex] {
			delete(c.recs, k)
		}
	}
}

// periodicQuery is called when the browser sends its PTR query: PTRs not
// confirmed since the previous one count a miss; after poofMisses misses
// over at least poofMinAge a PTR expires (a simplified RFC 6762 §10.5
// passive observation of failures, for speakers that died without a
// goodbye).
func (c *cache) periodicQuery(now time.Time) {
	for k, r := range c.recs {
		if k.rrtype != dns.TypePTR {
			continue
		}
		r.missed++
		if r.missed > poofMisses && now.Sub(r.received) >= poofMinAge && r.expires.After(now.Add(goodbyeGrace)) {
			r.expires = now.Add(goodbyeGrace)
		}
	}
}

// question is something the browser should ask for.
type question struct {
	name   string
	rrtype uint16
}

// needs lists what is missing to resolve the instances (SRV and TXT of an
// instance, addresses of an SRV target) and what is due for a refresh at
// 80% of its TTL (RFC 6762 §5.2).
func (c *cache) needs(now time.Time) []question {
	var qs []question
	add := func(name string, t uint16) {
		q := question{name: name, rrtype: t}
		if !slices.Contains(qs, q) {
			qs = append(qs, q)
		}
	}
	have := map[question]bool{}
	for k, r := range c.recs {
		have[question{k.name, k.rrtype}] = true
		if k.rrtype != dns.TypePTR && now.After(r.received.Add(r.ttl*8/10)) {
			add(r.name, k.rrtype)
		}
	}
	for k, r := range c.recs {
		switch k.rrtype {
		case dns.TypePTR:
			inst := strings.ToLower(r.target)
			if !have[question{inst, dns.TypeSRV}] {
				add(r.target, dns.TypeSRV)
			}
			if !have[question{inst, dns.TypeTXT}] {
				add(r.target, dns.TypeTXT)
			}
		case dns.TypeSRV:
			host := strings.ToLower(r.target)
			if !have[question{host, dns.TypeA}] && !have[question{host, dns.TypeAAAA}] {
				add(r.target, dns.TypeA)
				add(r.target, dns.TypeAAAA)
			}
		}
	}
	slices.SortFunc(qs, func(a, b question) int {
		return cmp.Or(strings.Compare(a.name, b.name), cmp.Compare(a.rrtype, b.rrtype))
	})
	return qs
}

// speakers assembles the resolved, valid speakers and every announced
// instance (for the advertiser's conflict check), both sorted by name.
func (c *cache) speakers() ([]Speaker, []instanceInfo) {
	type inst struct {
		name, fqdn string
		ifaces     []string
	}
	byFQDN := map[string]*inst{}
	for k, r := range c.recs {
		if k.rrtype != dns.TypePTR {
			continue
		}
		fq := strings.ToLower(r.target)
		in, ok := byFQDN[fq]
		if !ok {
			label, _, err := splitFirstLabel(r.target)
			if err != nil {
				continue
			}
			in = &inst{name: label, fqdn: fq}
			byFQDN[fq] = in
		}
		if !slices.Contains(in.ifaces, r.ifName) {
			in.ifaces = append(in.ifaces, r.ifName)
		}
	}
	var sps []Speaker
	var all []instanceInfo
	for _, in := range byFQDN {
		srv := c.latest(in.fqdn, dns.TypeSRV)
		txt := c.latest(in.fqdn, dns.TypeTXT)
		// Every distinct id announced under this name counts for conflict
		// checks (two devices claiming one name is exactly the case where
		// several TXT records share an owner name); "" stands for a
		// missing or invalid TXT record.
		ids := map[string]bool{}
		for k, r := range c.recs {
			if k.rrtype == dns.TypeTXT && k.name == in.fqdn {
				v, err := ParseTXT(r.txt)
				ids[v.ID] = ids[v.ID] || err == nil
			}
		}
		if len(ids) == 0 {
			ids[""] = true
		}
		for id := range ids {
			all = append(all, instanceInfo{Name: in.name, ID: id})
		}
		var info Info
		valid := false
		if txt != nil {
			if v, err := ParseTXT(txt.txt); err == nil {
				info, valid = v, true
			}
		}
		if !valid || srv == nil || srv.port == 0 {
			continue
		}
		sp := Speaker{Name: in.name, Info: info, Host: strings.TrimSuffix(srv.target, "."), Port: srv.port}
		host := strings.ToLower(srv.target)
		for k, r := range c.recs {
			if (k.rrtype != dns.TypeA && k.rrtype != dns.TypeAAAA) || k.name != host {
				continue
			}
			a := r.addr
			if a.Is6() && (a.IsLinkLocalUnicast() || a.IsLinkLocalMulticast()) {
				a = a.WithZone(r.ifName)
			}
			if !slices.Contains(sp.Addrs, a) {
				sp.Addrs = append(sp.Addrs, a)
			}
			if !slices.Contains(sp.Interfaces, r.ifName) {
				sp.Interfaces = append(sp.Interfaces, r.ifName)
			}
		}
		if len(sp.Addrs) == 0 {
			continue
		}
		slices.SortFunc(sp.Addrs, func(a, b netip.Addr) int { return a.Compare(b) })
		slices.Sort(sp.Interfaces)
		sps = append(sps, sp)
	}
	slices.SortFunc(sps, func(a, b Speaker) int { return cmp.Or(strings.Compare(a.Name, b.Name), strings.Compare(a.ID, b.ID)) })
	slices.SortFunc(all, func(a, b instanceInfo) int {
		return cmp.Or(strings.Compare(a.Name, b.Name), strings.Compare(a.ID, b.ID))
	})
	return sps, all
}

// latest is the most recently received record of name and type.
func (c *cache) latest(name string, t uint16) *record {
	var best *record
	for k, r := range c.recs {
		if k.rrtype == t && k.name == name && (best == nil || r.received.After(best.received)) {
			best = r
		}
	}
	return best
}
