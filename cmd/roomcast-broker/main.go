// Command roomcast-broker runs the roomcast Connect hub.
//
//	roomcast-broker [--listen ADDR] [--state-dir DIR] [--config FILE]
//	roomcast-broker token create|list|revoke ...
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/roomcast/roomcast/broker"
	"github.com/roomcast/roomcast/buildinfo"
	"github.com/roomcast/roomcast/config"
	"github.com/roomcast/roomcast/discovery"
	"github.com/roomcast/roomcast/library"
	"github.com/roomcast/roomcast/systemd"
)

const usage = `usage:
  roomcast-broker [options]                  run the broker
  roomcast-broker token create [--user NAME] [--label TEXT] [--state-dir DIR]
                                             print a new token on the last line
  roomcast-broker token list [--user NAME] [--json] [--state-dir DIR]
                                             the tokens (id, user, label, created)
  roomcast-broker token revoke ID|TOKEN [--state-dir DIR]
                                             revoke a token; a running broker closes
                                             its connections within 2 s
  roomcast-broker scan --music DIR [--state-dir DIR]
                                             index and measure a music folder now

options (also ROOMCAST_<NAME> environment variables and TOML keys in --config):
`

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "roomcast-broker:", err)
		if config.IsUsage(err) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

// usageError is bad input: exit 2.
type usageError struct{ error }

func (usageError) Usage() {}

func run(args []string, stdout, stderr io.Writer) error {
	if len(args) >= 1 && args[0] == "token" {
		return tokenCommand(args[1:], stdout, stderr)
	}
	if len(args) >= 1 && args[0] == "scan" {
		return scanCommand(args[1:], stdout, stderr)
	}
	fs := flag.NewFlagSet("roomcast-broker", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, usage); fs.PrintDefaults() }
	cfg := fs.String("config", "", "TOML config file")
	listen := fs.String("listen", ":4100", "HTTP/websocket listen address")
	stateDir := fs.String("state-dir", config.DefaultStateDir(), "database directory")
	metricsListen := fs.String("metrics-listen", "", "serve /metrics without a token on this address")
	music := fs.String("music", "", "music folder to index and serve (empty: no library)")
	mdns := fs.String("mdns", "", "interfaces to browse for speakers on (comma-separated); empty: every up multicast interface; off: none")
	var publicURL string
	config.URLVar(fs, &publicURL, "public-url", "", "the `URL` speakers use to reach this broker (default http://HOSTNAME:PORT)", "http", "https")
	rescanEvery := fs.Duration("rescan-interval", 0, "library: rescan this often (0: at start and on request)")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	heartbeat := fs.Duration("heartbeat", 8*time.Second, "broker: interval of pings to clients")
	dropAfter := fs.Duration("drop-after", 20*time.Second, "broker: drop a client silent this long")
	version := fs.Bool("version", false, "print the version and exit")
	if err := config.ParseArgs(fs, args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err}
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("unexpected argument %q", fs.Arg(0))}
	}
	if *version {
		fmt.Fprintln(stdout, buildinfo.String("roomcast-broker"))
		return nil
	}
	if err := config.Apply(fs, *cfg, false, "config", "version"); err != nil {
		return usageError{err}
	}
	if *heartbeat <= 0 || *dropAfter <= *heartbeat {
		return usageError{fmt.Errorf("--drop-after (%s) must be longer than --heartbeat (%s)", *dropAfter, *heartbeat)}
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return usageError{fmt.Errorf("--log-level: %w", err)}
	}
	log := systemd.NewLogger(os.Stderr, level)
	notify := systemd.NotifierFromEnv()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	mux := http.NewServeMux()
	opts := broker.Options{Addr: *listen, StateDir: *stateDir, MetricsAddr: *metricsListen, Logger: log,
		HeartbeatInterval: *heartbeat, DropAfter: *dropAfter, Mux: mux}
	var lib *library.Library
	if *music != "" {
		var err error
		if lib, err = library.Open(library.Options{MusicDir: *music, StateDir: *stateDir,
			Logger: log.With("component", "library"), RescanInterval: *rescanEvery}); err != nil {
			return err
		}
		defer lib.Close() // after lib.Run has returned (below)
		opts.Resolver = lib
	}
	b, err := broker.New(opts)
	if err != nil {
		return err
	}
	libDone := make(chan struct{})
	if lib != nil {
		lib.Register(mux, b.RequireToken)
		go func() { defer close(libDone); _ = lib.Run(ctx) }()
	} else {
		close(libDone)
	}
	defer func() { stop(); <-libDone }()
	errc := make(chan error, 1)
	go func() { errc <- b.Run(ctx) }()
	select {
	case err := <-errc:
		return err
	case <-waitAddr(ctx, b):
	}
	addr, _ := b.Addr(ctx)
	if publicURL == "" {
		publicURL = "http://" + broker.PublicAddr(addr)
	}
	if err := discovery.StartPickerAPI(ctx, discovery.PickerConfig{Mux: mux, Auth: b.RequireToken, Interfaces: *mdns,
		BrokerURL: publicURL, CreateToken: b.Store().CreateToken, DeleteToken: b.Store().DeleteToken,
		User: broker.UserFrom, Log: log}); err != nil {
		stop()
		<-errc
		return usageError{err}
	}
	_ = notify.Ready()
	_ = notify.Status("Serving")
	err = <-errc
	_ = notify.Stopping()
	return err
}

// waitAddr is closed once the broker listens.
func waitAddr(ctx context.Context, b *broker.Broker) <-chan struct{} {
	ch := make(chan struct{})
	go func() {
		if _, err := b.Addr(ctx); err == nil {
			close(ch)
		}
	}()
	return ch
}
