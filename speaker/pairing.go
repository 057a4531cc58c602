package speaker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/roomcast/roomcast/discovery"
	"github.com/roomcast/roomcast/protocol"
	"github.com/roomcast/roomcast/receiver"
)

// resetPairing is `roomcastd reset-pairing`: the owner's local way to make
// a paired speaker pairable again. It forgets the broker URL and token in
// stateDir (the key pair and device id stay).
func resetPairing(stateDir string, stdout io.Writer) error {
	if st, err := os.Stat(stateDir); err != nil || !st.IsDir() {
		return fmt.Errorf("reset-pairing: state dir %s: not a directory (pass --state-dir)", stateDir)
	}
	had, err := discovery.ResetPairing(stateDir)
	if err != nil {
		return fmt.Errorf("reset-pairing: %w", err)
	}
	if !had {
		_, err = fmt.Fprintf(stdout, "not paired (no %s in %s): nothing to reset\n", discovery.CredentialsFile, stateDir)
		return err
	}
	_, err = fmt.Fprintf(stdout, "pairing reset: removed %s\nrestart roomcastd (systemctl restart roomcastd) so that it leaves its broker and waits to be paired\n",
		filepath.Join(stateDir, discovery.CredentialsFile))
	return err
}

// speakerDiscovery is roomcastd's side of discovery: the info/pairing HTTP
// endpoint and the mDNS advertisement of it.
type speakerDiscovery struct {
	Pairing *discovery.Pairing
	// Mux serves the pairing endpoint; the daemon adds /healthz and
	// /metrics to it.
	Mux *http.ServeMux
	adv *discovery.Advertiser // nil with --mdns off
	ln  net.Listener
	log *slog.Logger
}

// newSpeakerDiscovery loads the pairing state, serves on ln (its port is
// advertised; the caller closes ln on error) and prepares the
// advertisement on the interfaces of mdns ("", "off" or a list). onPaired runs on the pairing goroutine after
// a (re-)pairing was saved: it must not block.
func newSpeakerDiscovery(stateDir, name, mdns string, ln net.Listener, pin string, log *slog.Logger, onPaired func(brokerURL, token string)) (*speakerDiscovery, error) {
	spec, err := discovery.ParseInterfaces(mdns)
	if err != nil {
		return nil, usageError{fmt.Errorf("--mdns: %w", err)}
	}
	id, err := receiver.LoadOrCreateID(stateDir)
	if err != nil {
		return nil, err
	}
	name = speakerName(name)
	d := &speakerDiscovery{log: log}
	p, err := discovery.NewPairing(discovery.PairingOptions{StateDir: stateDir, DeviceID: id, Name: name, PIN: pin, Logger: log,
		OnPaired: func(u, tok string) {
			if d.adv != nil {
				d.adv.SetPaired(true)
			}
			if onPaired != nil {
				onPaired(u, tok)
			}
		}})
	if err != nil {
		return nil, err
	}
	d.Pairing = p
	d.Mux = http.NewServeMux()
	d.Mux.Handle("/", p.Handler())
	d.ln = ln
	if !spec.Off {
		port := ln.Addr().(*net.TCPAddr).Port
		adv, err := discovery.NewAdvertiser(discovery.AdvertiserOptions{Name: name, DeviceID: id, Type: protocol.DeviceSpeaker,
			Port: port, InfoPath: discovery.InfoPath, Interfaces: spec, Paired: p.Paired(), Logger: log})
		if err != nil {
			ln.Close()
			return nil, err
		}
		d.adv = adv
	}
	return d, nil
}

// speakerName is the name shown in pickers: name, else the host name.
func speakerName(name string) string {
	if name != "" {
		return name
	}
	if h, err := os.Hostname(); err == nil && h != "" {
		return h
	}
	return "roomcast speaker"
}

// SetName renames the speaker on its info endpoint and in its mDNS
// advertisement (a SIGHUP reload). Safe from any goroutine.
func (d *speakerDiscovery) SetName(name string) {
	d.Pairing.SetName(name)
	if d.adv != nil {
		if err := d.adv.SetName(name); err != nil {
			d.log.Warn("reload: mDNS name refused; keeping the old one", "name", name, "err", err)
		}
	}
}

// Run serves the endpoint, the pairing state and the advertisement until
// ctx is done (then nil: goodbyes sent, server shut down).
func (d *speakerDiscovery) Run(ctx context.Context) error {
	srv := &http.Server{Handler: d.Mux, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second,
		WriteTimeout: 10 * time.Second, IdleTimeout: 30 * time.Second, MaxHeaderBytes: 8 << 10}
	errc := make(chan error, 3)
	n := 2
	go func() { errc <- d.Pairing.Run(ctx) }()
	go func() {
		err := srv.Serve(d.ln)
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		errc <- err
	}()
	if d.adv != nil {
		n++
		go func() { errc <- d.adv.Run(ctx) }()
	}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	var first error
	for ; n > 0; n-- {
		if err := <-errc; err != nil && first == nil {
			first = err
			d.log.Error("discovery stopped", "err", err)
		}
	}
	return first
}
