package discovery

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
)

// InterfaceSpec selects the interfaces mDNS runs on (roomcastd --mdns,
// roomcast discover --interfaces).
//
// The zero value is "auto": every interface that is up, not loopback,
// multicast-capable and has an address. Off disables mDNS. Names lists
// interfaces explicitly; they are used when up (loopback included when
// named), whatever their flags.
type InterfaceSpec struct {
	Off   bool
	Names []string
}

// ParseInterfaces reads a spec: "" or "auto" (automatic), "off", or a
// comma-separated list of interface names ("eth0,wlan0").
func ParseInterfaces(spec string) (InterfaceSpec, error) {
	spec = strings.TrimSpace(spec)
	switch spec {
	case "", "auto":
		return InterfaceSpec{}, nil
	case "off":
		return InterfaceSpec{Off: true}, nil
	}
	var names []string
	for _, n := range strings.Split(spec, ",") {
		n = strings.TrimSpace(n)
		if n == "" {
			return InterfaceSpec{}, fmt.Errorf("interfaces %q: empty name in the list", spec)
		}
		if n == "off" || n == "auto" {
			return InterfaceSpec{}, fmt.Errorf("interfaces %q: %q must stand alone", spec, n)
		}
		if len(n) > 15 || strings.ContainsAny(n, "/ \t") {
			return InterfaceSpec{}, fmt.Errorf("interfaces %q: %q is not an interface name", spec, n)
		}
		if slices.Contains(names, n) {
			return InterfaceSpec{}, fmt.Errorf("interfaces %q: %q given twice", spec, n)
		}
		names = append(names, n)
	}
	return InterfaceSpec{Names: names}, nil
}

// String is the spec in ParseInterfaces' syntax.
func (s InterfaceSpec) String() string {
	switch {
	case s.Off:
		return "off"
	case len(s.Names) == 0:
		return "auto"
	}
	return strings.Join(s.Names, ",")
}

// netIface is one selected interface and its addresses at the time of
// resolving.
type netIface struct {
	iface net.Interface
	addrs []netip.Addr // sorted
}

// resolve lists the interfaces the spec selects right now. Explicit names
// that do not exist or are down are left out (they may come up later).
func (s InterfaceSpec) resolve() ([]netIface, error) {
	if s.Off {
		return nil, nil
	}
	all, err := net.Interfaces()
	if err != nil {
		return nil, fmt.Errorf("listing interfaces: %w", err)
	}
	var out []netIface
	for _, ifi := range all {
		if ifi.Flags&net.FlagUp == 0 {
			continue
		}
		if len(s.Names) > 0 {
			if !slices.Contains(s.Names, ifi.Name) {
				continue
			}
		} else if ifi.Flags&net.FlagLoopback != 0 || ifi.Flags&net.FlagMulticast == 0 {
			continue
		}
		addrs := ifaceAddrs(ifi)
		if len(s.Names) == 0 && len(addrs) == 0 {
			continue
		}
		out = append(out, netIface{iface: ifi, addrs: addrs})
	}
	return out, nil
}

func ifaceAddrs(ifi net.Interface) []netip.Addr {
	list, err := ifi.Addrs()
	if err != nil {
		return nil
	}
	var out []netip.Addr
	for _, a := range list {
		ipn, ok := a.(*net.IPNet)
		if !ok {
			continue
		}
		ad, ok := netip.AddrFromSlice(ipn.IP)
		if !ok {
			continue
		}
		out = append(out, ad.Unmap())
	}
	slices.SortFunc(out, func(a, b netip.Addr) int { return a.Compare(b) })
	return out
}

// signature identifies a set of interfaces with their indices, flags and
// addresses: when it changes, the advertiser re-announces.
func signature(list []netIface) string {
	var b strings.Builder
	for _, n := range list {
		fmt.Fprintf(&b, "%s/%d/%v:", n.iface.Name, n.iface.Index, n.iface.Flags)
		for _, a := range n.addrs {
			b.WriteString(a.String())
			b.WriteByte(',')
		}
		b.WriteByte(';')
	}
	return b.String()
}

func ifaceNames(list []netIface) []string {
	out := make([]string, len(list))
	for i, n := range list {
		out[i] = n.iface.Name
	}
	return out
}
