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
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/roomcast/roomcast/brokerserver"
	"github.com/roomcast/roomcast/buildinfo"
	"github.com/roomcast/roomcast/config"
	"github.com/roomcast/roomcast/discovery"
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
	opts, level, version, err := parseOptions(args, stderr)
	if err != nil {
		return err
	}
	if version {
		fmt.Fprintln(stdout, buildinfo.String("roomcast-broker"))
		return nil
	}
	opts.Logger = systemd.NewLogger(os.Stderr, level)
	notify := systemd.NotifierFromEnv()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	srv, err := brokerserver.New(opts)
	if err != nil {
		return err
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Run(ctx) }()
	select {
	case err := <-errc:
		return err
	case <-srv.Ready():
	}
	_ = notify.Ready()
	_ = notify.Status("Serving")
	err = <-errc
	_ = notify.Stopping()
	return err
}

// parseOptions reads the server's options: flags > ROOMCAST_* > --config.
func parseOptions(args []string, stderr io.Writer) (o brokerserver.Options, level slog.Level, version bool, err error) {
	fs := flag.NewFlagSet("roomcast-broker", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, usage); fs.PrintDefaults() }
	cfg := fs.String("config", "", "TOML config file")
	fs.StringVar(&o.Listen, "listen", ":4100", "HTTP/websocket listen address")
	fs.StringVar(&o.StateDir, "state-dir", config.DefaultStateDir(), "database directory")
	fs.StringVar(&o.MetricsListen, "metrics-listen", "", "serve /metrics without a token on this address")
	fs.StringVar(&o.Music, "music", "", "music folder to index and serve (empty: no library)")
	fs.StringVar(&o.MDNS, "mdns", "", "interfaces to browse for speakers on (comma-separated); empty: every up multicast interface; off: none")
	config.URLVar(fs, &o.PublicURL, "public-url", "", "the `URL` speakers use to reach this broker (default http://HOSTNAME:PORT)", "http", "https")
	fs.DurationVar(&o.RescanInterval, "rescan-interval", 0, "library: rescan this often (0: at start and on request)")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	fs.DurationVar(&o.Heartbeat, "heartbeat", 8*time.Second, "broker: interval of pings to clients")
	fs.DurationVar(&o.DropAfter, "drop-after", 20*time.Second, "broker: drop a client silent this long")
	fs.BoolVar(&version, "version", false, "print the version and exit")
	if err = config.ParseArgs(fs, args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return o, level, false, err
		}
		return o, level, false, usageError{err}
	}
	if fs.NArg() > 0 {
		return o, level, false, usageError{fmt.Errorf("unexpected argument %q", fs.Arg(0))}
	}
	if version {
		return o, level, true, nil
	}
	if err := config.Apply(fs, *cfg, false, "config", "version"); err != nil {
		return o, level, false, usageError{err}
	}
	if o.Heartbeat <= 0 || o.DropAfter <= o.Heartbeat {
		err = fmt.Errorf("--drop-after (%s) must be longer than --heartbeat (%s)", o.DropAfter, o.Heartbeat)
	} else if lerr := level.UnmarshalText([]byte(*logLevel)); lerr != nil {
		err = fmt.Errorf("--log-level: %w", lerr)
	} else if _, ierr := discovery.ParseInterfaces(o.MDNS); ierr != nil {
		err = fmt.Errorf("--mdns: %w", ierr)
	}
	if err != nil {
		return o, level, false, usageError{err}
	}
	return o, level, false, nil
}
