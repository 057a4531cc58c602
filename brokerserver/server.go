// Package brokerserver assembles a roomcast broker server: the hub
// (package broker), the music library when there is one (package
// library, which the broker reaches only through broker.Resolver), and the
// pairing API for pickers (package discovery), all on one HTTP mux.
// roomcast-broker runs one on its own; roomcastd runs one in-process in
// single-box mode. Both start it the same way:
//
//	srv, err := brokerserver.New(opts) // opens the databases, adds the routes
//	go srv.Run(ctx)                    // listens; serves until ctx ends
//	<-srv.Ready()                      // then srv.URL(), srv.Addr()
//
// Web app: routes beyond the broker's, the library's and the pairing
// API's (the web picker) are added by Options.Mount, on the same mux,
// before anything is served.
package brokerserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/roomcast/roomcast/broker"
	"github.com/roomcast/roomcast/discovery"
	"github.com/roomcast/roomcast/library"
)

// Options configure a Server. Zero values take the defaults listed.
type Options struct {
	Listen        string // default ":4100"
	StateDir      string // broker.db, library.db (required)
	MetricsListen string // when set, /metrics without a token there
	// Music is the folder the library indexes and serves; empty: no
	// library (play commands then carry only URIs).
	Music          string
	RescanInterval time.Duration // library: rescan this often (0: at start and on request)
	// MDNS are the interfaces to browse for speakers on: "", "off" or a
	// comma-separated list (discovery.ParseInterfaces).
	MDNS string
	// PublicURL is the URL speakers are given when paired; default
	// http://HOSTNAME:PORT of the listener.
	PublicURL            string
	Heartbeat, DropAfter time.Duration // broker defaults: 8s, 20s
	// OwnerTokenFile, when set, holds the owner's token (user "owner",
	// mode 0600): created on the first start, and again whenever the
	// broker no longer accepts the one in the file (revoked, or a new
	// database). Single-box mode uses it; OwnerToken returns it.
	OwnerTokenFile string
	Logger         *slog.Logger
	// Mount, when set, is called once by New with the server's mux and
	// broker: the hook for the web app's routes. Protect them with
	// b.RequireToken (and broker.UserFrom) like every route but /healthz.
	Mount func(mux *http.ServeMux, b *broker.Broker) error
}

// Server is a broker server. New prepares it; Run serves.
//
// Concurrency: Run is called once (it releases the databases when it
// returns, so call it even when giving up early). Ready is closed once the listener is
// open, the pairing API is mounted and the owner token (if any) exists;
// Addr, URL, LocalURL and OwnerToken may be read after that from any
// goroutine. Broker and Rescan are safe at any time.
type Server struct {
	opts  Options
	log   *slog.Logger
	mux   *http.ServeMux
	b     *broker.Broker
	lib   *library.Library // nil without Options.Music
	ready chan struct{}

	// Written by Run before ready is closed; read-only after.
	addr       net.Addr
	url        string
	ownerToken string
}

// New opens the broker's database and the library (when Options.Music is
// set) and adds every route to one mux; nothing listens until Run.
func New(opts Options) (*Server, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if _, err := discovery.ParseInterfaces(opts.MDNS); err != nil {
		return nil, fmt.Errorf("brokerserver: mdns: %w", err)
	}
	s := &Server{opts: opts, log: opts.Logger, mux: http.NewServeMux(), ready: make(chan struct{})}
	bopts := broker.Options{Addr: opts.Listen, StateDir: opts.StateDir, MetricsAddr: opts.MetricsListen, Logger: opts.Logger,
		HeartbeatInterval: opts.Heartbeat, DropAfter: opts.DropAfter, Mux: s.mux}
	if opts.Music != "" {
		lib, err := library.Open(library.Options{MusicDir: opts.Music, StateDir: opts.StateDir,
			Logger: opts.Logger.With("component", "library"), RescanInterval: opts.RescanInterval})
		if err != nil {
			return nil, err
		}
		s.lib, bopts.Resolver = lib, lib
	}
	b, err := broker.New(bopts)
	if err != nil {
		s.closeLibrary()
		return nil, err
	}
	s.b = b
	if s.lib != nil {
		s.lib.Register(s.mux, b.RequireToken)
	}
	if opts.Mount != nil {
		if err := opts.Mount(s.mux, b); err != nil {
			s.closeLibrary()
			return nil, fmt.Errorf("brokerserver: mount: %w", err)
		}
	}
	return s, nil
}

// Broker is the hub (its store, registry, authentication).
func (s *Server) Broker() *broker.Broker { return s.b }

// Rescan asks the library for a scan (nothing without a library). It
// never blocks.
func (s *Server) Rescan() {
	if s.lib != nil {
		s.lib.Rescan()
	}
}

// Ready is closed once the server serves (see Server).
func (s *Server) Ready() <-chan struct{} { return s.ready }

// Addr is the listening address (after Ready).
func (s *Server) Addr() net.Addr { return s.addr }

// URL is the address others on the LAN use: Options.PublicURL, else
// http://HOSTNAME:PORT (after Ready).
func (s *Server) URL() string { return s.url }

// LocalURL is the address an in-process client dials: loopback when the
// server listens on every interface (after Ready).
func (s *Server) LocalURL() string {
	if ta, ok := s.addr.(*net.TCPAddr); ok && ta.IP.IsUnspecified() {
		return "http://" + net.JoinHostPort("127.0.0.1", fmt.Sprint(ta.Port))
	}
	return "http://" + s.addr.String()
}

// OwnerToken is the owner's token of Options.OwnerTokenFile (after
// Ready; empty without the option).
func (s *Server) OwnerToken() string { return s.ownerToken }

// RenewOwnerToken returns the token in Options.OwnerTokenFile if the
// broker accepts it, else creates a new one and writes it there (a revoked
// owner token is replaced without a restart). Call it after Ready.
func (s *Server) RenewOwnerToken(ctx context.Context) (string, error) {
	if s.opts.OwnerTokenFile == "" {
		return "", errors.New("brokerserver: no owner token file")
	}
	return ownerToken(ctx, s.b, s.opts.OwnerTokenFile)
}

// Run listens and serves until ctx ends (then nil, after a graceful
// shutdown of the broker and the library) or a part fails. It closes the
// library's database when it returns.
func (s *Server) Run(ctx context.Context) error {
	defer s.closeLibrary() // after lib.Run has returned: g.Wait below
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return s.b.Run(ctx) })
	if s.lib != nil {
		g.Go(func() error { return s.lib.Run(ctx) })
	}
	g.Go(func() error {
		addr, err := s.b.Addr(ctx)
		if err != nil {
			return nil // ctx ended first: the broker's own error, if any, is the group's
		}
		return s.start(ctx, addr)
	})
	return g.Wait()
}

// start finishes what needs the listening address, then closes ready.
func (s *Server) start(ctx context.Context, addr net.Addr) error {
	url := s.opts.PublicURL
	if url == "" {
		url = "http://" + broker.PublicAddr(addr)
	}
	url = strings.TrimSuffix(url, "/")
	st := s.b.Store()
	if err := discovery.StartPickerAPI(ctx, discovery.PickerConfig{Mux: s.mux, Auth: s.b.RequireToken, Interfaces: s.opts.MDNS,
		BrokerURL: url, CreateToken: st.CreateToken, DeleteToken: st.DeleteToken, User: broker.UserFrom, Log: s.log}); err != nil {
		return fmt.Errorf("brokerserver: %w", err)
	}
	var tok string
	if s.opts.OwnerTokenFile != "" {
		var err error
		if tok, err = ownerToken(ctx, s.b, s.opts.OwnerTokenFile); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
	}
	s.addr, s.url, s.ownerToken = addr, url, tok
	close(s.ready)
	s.log.Info("broker server ready", "url", url, "library", s.opts.Music != "")
	return nil
}

func (s *Server) closeLibrary() {
	if s.lib != nil {
		if err := s.lib.Close(); err != nil {
			s.log.Error("library", "err", err)
		}
	}
}

// ownerToken returns the owner token in path if b accepts it, else
// creates one for user "owner" and writes it to path (0600, atomically).
func ownerToken(ctx context.Context, b *broker.Broker, path string) (string, error) {
	if data, err := os.ReadFile(path); err == nil {
		tok := strings.TrimSpace(string(data))
		if _, err := b.Store().Authenticate(ctx, tok); err == nil { // the database, not the cache: revocations count at once
			return tok, nil
		}
	}
	tok, err := b.Store().CreateToken(ctx, "owner", "embedded owner")
	if err != nil {
		return "", fmt.Errorf("owner token: %w", err)
	}
	if err := os.WriteFile(path+".tmp", []byte(tok+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("owner token: %w", err)
	}
	if err := os.Rename(path+".tmp", path); err != nil {
		return "", fmt.Errorf("owner token: %w", err)
	}
	return tok, nil
}
