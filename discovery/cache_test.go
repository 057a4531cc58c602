package discovery

import (
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/miekg/dns"
)

const testSvc = "_roomcast._tcp.local."

func hdr(name string, t uint16, ttl uint32, flush bool) dns.RR_Header {
	c := uint16(dns.ClassINET)
	if flush {
		c |= cacheFlushBit
	}
	return dns.RR_Header{Name: name, Rrtype: t, Class: c, Ttl: ttl}
}

// announcement is what a responder sends for one instance.
func announcement(instance, host string, ttl uint32, txt []string, ip string) *dns.Msg {
	inst := escapeLabel(instance) + "." + testSvc
	m := new(dns.Msg)
	m.Response = true
	m.Answer = []dns.RR{
		&dns.PTR{Hdr: hdr(testSvc, dns.TypePTR, ttl, false), Ptr: inst},
		&dns.SRV{Hdr: hdr(inst, dns.TypeSRV, ttl, true), Port: 4101, Target: host},
		&dns.TXT{Hdr: hdr(inst, dns.TypeTXT, ttl, true), Txt: txt},
	}
	if ip != "" {
		m.Extra = []dns.RR{&dns.A{Hdr: hdr(host, dns.TypeA, min(ttl, 120), true), A: net.ParseIP(ip)}}
	}
	return m
}

// wire packs and unpacks m, as the browser receives it.
func wire(t *testing.T, m *dns.Msg) *dns.Msg {
	t.Helper()
	b, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	var out dns.Msg
	if err := out.Unpack(b); err != nil {
		t.Fatal(err)
	}
	return &out
}

func TestCacheResolvesAndGoodbyeRemoves(t *testing.T) {
	c := newCache(ServiceType + ".local.")
	now := time.Unix(1000, 0)
	c.add(wire(t, announcement("Küche (2)", "roomcast-a.local.", 4500, goodTXT(), "10.99.1.1")), 3, "veth0", now)
	sps, all := c.speakers()
	if len(sps) != 1 || len(all) != 1 {
		t.Fatalf("speakers %v instances %v", sps, all)
	}
	s := sps[0]
	if s.Name != "Küche (2)" || s.ID != "rc-0123abcd" || s.Port != 4101 || s.Host != "roomcast-a.local" ||
		len(s.Addrs) != 1 || s.Addrs[0].String() != "10.99.1.1" || s.Paired || s.InfoURL() != "http://10.99.1.1:4101/v1/info" {
		t.Fatalf("speaker %+v", s)
	}
	// Goodbye: TTL 0 on the PTR; gone one second later, not before.
	bye := announcement("Küche (2)", "roomcast-a.local.", 0, goodTXT(), "")
	c.add(wire(t, bye), 3, "veth0", now.Add(time.Second))
	c.expire(now.Add(1500 * time.Millisecond))
	if sps, _ := c.speakers(); len(sps) != 1 {
		t.Fatal("removed before the one second grace")
	}
	c.expire(now.Add(2 * time.Second))
	if sps, all := c.speakers(); len(sps) != 0 || len(all) != 0 {
		t.Fatalf("still listed after goodbye: %v", sps)
	}
}

func TestCacheFlushAndTTL(t *testing.T) {
	c := newCache(ServiceType + ".local.")
	now := time.Unix(1000, 0)
	c.add(wire(t, announcement("A", "h.local.", 120, goodTXT(), "10.99.1.1")), 3, "veth0", now)
	// New address with the cache-flush bit two seconds later: the old one
	// goes after a second.
	m := new(dns.Msg)
	m.Response = true
	m.Answer = []dns.RR{&dns.A{Hdr: hdr("h.local.", dns.TypeA, 120, true), A: net.ParseIP("10.99.1.7")}}
	c.add(wire(t, m), 3, "veth0", now.Add(2*time.Second))
	c.expire(now.Add(3500 * time.Millisecond))
	sps, _ := c.speakers()
	if len(sps) != 1 || len(sps[0].Addrs) != 1 || sps[0].Addrs[0].String() != "10.99.1.7" {
		t.Fatalf("after cache flush: %+v", sps)
	}
	// TTL expiry without refresh.
	c.expire(now.Add(200 * time.Second))
	if sps, _ := c.speakers(); len(sps) != 0 {
		t.Fatalf("listed after the address TTL: %+v", sps)
	}
}

func TestCacheIgnoresHostileAndForeign(t *testing.T) {
	c := newCache(ServiceType + ".local.")
	now := time.Unix(1000, 0)
	m := new(dns.Msg)
	m.Response = true
	m.Answer = []dns.RR{
		&dns.PTR{Hdr: hdr("_http._tcp.local.", dns.TypePTR, 120, false), Ptr: "x._http._tcp.local."},    // other service
		&dns.PTR{Hdr: hdr(testSvc, dns.TypePTR, 120, false), Ptr: "a.b._other._tcp.local."},             // not our instance
		&dns.A{Hdr: hdr("victim.local.", dns.TypeA, 120, false), A: net.ParseIP("10.0.0.1")},            // no SRV names it
		&dns.SRV{Hdr: hdr("y._http._tcp.local.", dns.TypeSRV, 120, false), Port: 1, Target: "h.local."}, // foreign SRV
	}
	c.add(wire(t, m), 3, "veth0", now)
	if len(c.recs) != 0 {
		t.Fatalf("kept %d foreign records", len(c.recs))
	}
	// A query (not a response) is ignored entirely.
	q := announcement("A", "h.local.", 120, goodTXT(), "10.99.1.1")
	q.Response = false
	c.add(wire(t, q), 3, "veth0", now)
	if len(c.recs) != 0 {
		t.Fatal("records taken from a query")
	}
	// Invalid TXT: an instance (for conflict checks) but not a speaker.
	c.add(wire(t, announcement("Bad", "h.local.", 120, []string{"id=x"}, "10.99.1.1")), 3, "veth0", now)
	sps, all := c.speakers()
	if len(sps) != 0 || len(all) != 1 || all[0].Name != "Bad" || all[0].ID != "" {
		t.Fatalf("speakers %v instances %v", sps, all)
	}
	// The cache is bounded.
	for i := 0; i < maxCacheRecords+100; i++ {
		c.add(wire(t, announcement(fmt.Sprintf("n%d", i), "h.local.", 120, goodTXT(), "")), 3, "veth0", now)
	}
	if len(c.recs) > maxCacheRecords || !c.overflow {
		t.Fatalf("cache holds %d records (limit %d), overflow %v", len(c.recs), maxCacheRecords, c.overflow)
	}
}

func TestCacheNeedsAndPOOF(t *testing.T) {
	c := newCache(ServiceType + ".local.")
	now := time.Unix(1000, 0)
	m := new(dns.Msg)
	m.Response = true
	inst := "A." + testSvc
	m.Answer = []dns.RR{&dns.PTR{Hdr: hdr(testSvc, dns.TypePTR, 4500, false), Ptr: inst}}
	c.add(wire(t, m), 3, "veth0", now)
	qs := c.needs(now)
	if len(qs) != 2 || qs[0].rrtype != dns.TypeTXT || qs[1].rrtype != dns.TypeSRV {
		t.Fatalf("needs %v, want SRV and TXT of %s", qs, inst)
	}
	// A PTR nobody confirms through several periodic queries goes.
	for i := 1; i <= poofMisses+1; i++ {
		c.periodicQuery(now.Add(time.Duration(i) * 20 * time.Second))
	}
	c.expire(now.Add(100 * time.Second))
	if len(c.recs) != 0 {
		t.Fatal("unconfirmed PTR kept")
	}
}
