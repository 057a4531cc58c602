package discovery

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync/atomic"
	"time"

	"github.com/grandcat/zeroconf"
	"github.com/roomcast/roomcast/protocol"
)

// AdvertiserOptions configure an Advertiser.
type AdvertiserOptions struct {
	Name       string              // instance name wanted (cleaned with CleanInstanceName)
	DeviceID   string              // protocol id rules
	Type       protocol.DeviceType // default speaker
	Port       int                 // port of the info/pairing HTTP server
	InfoPath   string              // default DefaultInfoPath
	Interfaces InterfaceSpec
	Paired     bool // initial paired state; later changes via SetPaired
	Logger     *slog.Logger

	// Poll is how often interfaces and addresses are re-read (default
	// 3 s). Probe is how long the advertiser listens for another instance
	// of the same name before it announces (default 1 s).
	Poll  time.Duration
	Probe time.Duration
}

// Advertiser announces one device as _roomcast._tcp.
//
// Run owns the zeroconf server and the internal browser it uses to find
// name conflicts; SetPaired, SetName and Instance may be called from any
// goroutine.
//
// Lifecycle of Run: wait for an interface; listen Probe long for instances
// already on the network and take the first free name of "Name",
// "Name (2)", "Name (3)"...; announce (grandcat/zeroconf RegisterProxy on
// the selected interfaces; each answer carries the addresses of the
// interface it goes out on). Then, until ctx is done: re-read interfaces
// every Poll and re-announce when the set or an address changed; when
// another device (different id) shows up with our name, the device with
// the greater id renames itself; when SetPaired changes the TXT record,
// re-announce; when SetName changes the wanted name, say goodbye for the
// old instance and announce the first free name of the new one.
// Re-announcing sends goodbyes then the new announcement within about half
// a second, inside the one second grace receivers give a goodbye. On cancel: goodbye packets, then Run returns nil.
type Advertiser struct {
	opts     AdvertiserOptions
	name     string // the wanted name Run works with; owned by Run
	log      *slog.Logger
	paired   atomic.Bool
	want     atomic.Pointer[string] // the wanted name SetName sets
	wake     chan struct{}
	instance atomic.Pointer[string]
}

// NewAdvertiser checks the options.
func NewAdvertiser(opts AdvertiserOptions) (*Advertiser, error) {
	name, err := CleanInstanceName(opts.Name)
	if err != nil {
		return nil, fmt.Errorf("advertiser: %w", err)
	}
	if opts.Type == "" {
		opts.Type = protocol.DeviceSpeaker
	}
	if opts.InfoPath == "" {
		opts.InfoPath = DefaultInfoPath
	}
	if opts.Port <= 0 || opts.Port > 65535 {
		return nil, fmt.Errorf("advertiser: port %d: must be 1-65535", opts.Port)
	}
	if err := validateInfo(Info{ID: opts.DeviceID, Type: opts.Type, Version: protocol.Version, InfoPath: opts.InfoPath}); err != nil {
		return nil, fmt.Errorf("advertiser: %w", err)
	}
	if opts.Poll <= 0 {
		opts.Poll = 3 * time.Second
	}
	if opts.Probe <= 0 {
		opts.Probe = time.Second
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	a := &Advertiser{opts: opts, name: name, log: log, wake: make(chan struct{}, 1)}
	a.paired.Store(opts.Paired)
	a.want.Store(&name)
	empty := ""
	a.instance.Store(&empty)
	return a, nil
}

// SetPaired changes the paired flag of the TXT record; the running
// advertiser re-announces. It never blocks.
func (a *Advertiser) SetPaired(p bool) {
	if a.paired.Swap(p) != p {
		select {
		case a.wake <- struct{}{}:
		default:
		}
	}
}

// SetName changes the wanted instance name (a configuration reload); the
// running advertiser says goodbye for the old name and announces the new
// one (or "Name (2)"... if another device has it). It never blocks; a
// name CleanInstanceName refuses is an error and changes nothing.
func (a *Advertiser) SetName(name string) error {
	clean, err := CleanInstanceName(name)
	if err != nil {
		return fmt.Errorf("advertiser: %w", err)
	}
	if old := a.want.Swap(&clean); *old != clean {
		select {
		case a.wake <- struct{}{}:
		default:
		}
	}
	return nil
}

// Instance is the instance name currently announced ("" when none).
func (a *Advertiser) Instance() string { return *a.instance.Load() }

// setInstance publishes a copy of name (never a pointer to Run's variable).
func (a *Advertiser) setInstance(name string) { a.instance.Store(&name) }

func (a *Advertiser) txt() []string {
	t, err := EncodeTXT(Info{ID: a.opts.DeviceID, Type: a.opts.Type, Version: protocol.Version,
		Paired: a.paired.Load(), InfoPath: a.opts.InfoPath})
	if err != nil { // cannot happen: validated in NewAdvertiser
		a.log.Error("mdns advertise: TXT", "err", err)
	}
	return t
}

// Run advertises until ctx is done and returns nil then. With
// Interfaces.Off it only waits.
func (a *Advertiser) Run(ctx context.Context) error {
	if a.opts.Interfaces.Off {
		<-ctx.Done()
		return nil
	}
	br, err := NewBrowser(BrowserOptions{Interfaces: a.opts.Interfaces, Logger: a.log, Poll: a.opts.Poll})
	if err != nil {
		return err
	}
	bctx, bcancel := context.WithCancel(ctx)
	berr := make(chan error, 1)
	go func() { berr <- br.Run(bctx) }()
	defer func() {
		bcancel()
		<-berr
	}()

	var (
		srv       *zeroconf.Server
		current   string // instance name announced ("" when none)
		sig       string
		probeEnds time.Time // while probing: when to announce
		pairedTXT bool
		yielded   bool // a conflicting device with a greater id is expected to rename
	)
	stop := func() {
		if srv != nil {
			srv.Shutdown() // sends the goodbyes
			srv = nil
		}
	}
	defer stop()
	announce := func(ifs []netIface, name string) {
		stop()
		list := make([]net.Interface, len(ifs))
		for i, n := range ifs {
			list[i] = n.iface
		}
		if len(list) == 0 { // never let zeroconf pick interfaces itself
			current = ""
			a.setInstance(current)
			return
		}
		pairedTXT = a.paired.Load()
		// No IPs: each answer then carries the addresses of the interface
		// it is sent on (grandcat/zeroconf reads them at answer time).
		s, err := zeroconf.RegisterProxy(escapeLabel(name), ServiceType, "local.", a.opts.Port,
			hostLabel(a.opts.DeviceID), nil, a.txt(), list)
		if err != nil {
			a.log.Warn("mdns advertise: register", "name", name, "ifaces", ifaceNames(ifs), "err", err)
			current = ""
			a.setInstance(current)
			return
		}
		srv, current = s, name
		a.setInstance(current)
		a.log.Info("mdns advertise", "name", name, "ifaces", ifaceNames(ifs), "port", a.opts.Port, "paired", pairedTXT)
	}

	t := time.NewTicker(a.opts.Poll)
	defer t.Stop()
	probeTimer := time.NewTimer(time.Hour)
	defer probeTimer.Stop()
	var ifs []netIface
	refresh := func() {
		list, err := a.opts.Interfaces.resolve()
		if err != nil {
			a.log.Warn("mdns advertise: interfaces", "err", err)
			return
		}
		s := signature(list)
		if s == sig {
			return
		}
		sig, ifs = s, list
		if len(ifs) == 0 {
			stop()
			current = ""
			a.setInstance(current)
			a.log.Info("mdns advertise: no interface to announce on", "spec", a.opts.Interfaces.String())
			return
		}
		if current == "" && probeEnds.IsZero() {
			probeEnds = time.Now().Add(a.opts.Probe)
			probeTimer.Reset(a.opts.Probe)
			return
		}
		if current != "" {
			a.log.Info("mdns advertise: interfaces changed; re-announcing", "ifaces", ifaceNames(ifs))
			announce(ifs, current)
		}
	}
	refresh()
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-berr:
			// The browser could not open the mDNS port: nothing works.
			berr <- err
			if err == nil {
				return nil
			}
			return fmt.Errorf("mdns advertise: %w", err)
		case <-t.C:
			refresh()
		case <-probeTimer.C:
			probeEnds = time.Time{}
			if len(ifs) > 0 && current == "" {
				announce(ifs, a.freeName(br.instances()))
			}
		case <-a.wake:
			if want := *a.want.Load(); want != a.name {
				a.name, yielded = want, false
				if current != "" {
					next := a.freeName(br.instances())
					a.log.Info("mdns advertise: renamed", "old", current, "new", next)
					announce(ifs, next)
				}
				continue
			}
			if current != "" && a.paired.Load() != pairedTXT {
				announce(ifs, current)
			}
		case <-br.Changes():
			if current == "" {
				continue
			}
			other, ok := a.conflict(br.instances(), current)
			switch {
			case ok && other < a.opts.DeviceID:
				next := a.freeName(br.instances())
				a.log.Warn("mdns advertise: name conflict; renaming", "name", current, "other_id", other, "new_name", next)
				yielded = false
				announce(ifs, next)
			case ok && !yielded:
				a.log.Info("mdns advertise: name conflict; the other device renames", "name", current, "other_id", other)
				yielded = true
			case !ok && yielded:
				// The other device renamed and said goodbye for the
				// records of the name, which share our PTR: announce again.
				yielded = false
				announce(ifs, current)
			}
		}
	}
}

// conflict reports whether another device (different id, or no valid
// TXT) announces name; other is its id.
func (a *Advertiser) conflict(all []instanceInfo, name string) (other string, ok bool) {
	for _, in := range all {
		if strings.EqualFold(in.Name, name) && in.ID != a.opts.DeviceID {
			return in.ID, true
		}
	}
	return "", false
}

// freeName is the first of Name, "Name (2)", ... that no other device uses.
func (a *Advertiser) freeName(all []instanceInfo) string {
	for n := 1; n < 1000; n++ {
		cand := conflictName(a.name, n)
		if _, taken := a.conflict(all, cand); !taken {
			return cand
		}
	}
	return conflictName(a.name, 1000)
}
