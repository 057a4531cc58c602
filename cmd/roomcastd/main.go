// Command roomcastd is the roomcast receiver daemon. With --broker it joins
// that broker; without, it runs an embedded broker in the same process and
// joins it over the same websocket any other speaker uses.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/roomcast/roomcast/broker"
	"github.com/roomcast/roomcast/buildinfo"
	"github.com/roomcast/roomcast/config"
	"github.com/roomcast/roomcast/receiver"
	"github.com/roomcast/roomcast/systemd"
)

const usage = `usage: roomcastd [options]

Joins the broker given by --broker, or, with none, runs an embedded broker
on --listen and joins it.

options (also ROOMCAST_<NAME> environment variables and TOML keys in --config):
`

type usageError struct{ error }

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "roomcastd:", err)
		var ue usageError
		if errors.As(err, &ue) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

func run(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("roomcastd", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, usage); fs.PrintDefaults() }
	cfg := fs.String("config", "", "TOML config file; flags override it")
	name := fs.String("name", "", "name shown in pickers (default: host name)")
	brokerURL := fs.String("broker", "", "join this broker (http://host:port); none: run the embedded broker")
	token := fs.String("token", "", "credential for the broker")
	tokenFile := fs.String("token-file", "", "file holding the credential for the broker")
	listen := fs.String("listen", ":4100", "embedded broker / API address")
	stateDir := fs.String("state-dir", config.DefaultStateDir(), "device id, credentials, volume, cache")
	volume := fs.Int("volume", 50, "initial volume 0-100 on first start; later starts use the last volume")
	metricsListen := fs.String("metrics-listen", "", "serve /metrics without a token on this address")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	heartbeat := fs.Duration("heartbeat", 8*time.Second, "broker: interval of pings to clients")
	dropAfter := fs.Duration("drop-after", 20*time.Second, "broker: drop a client silent this long")
	version := fs.Bool("version", false, "print the version and exit")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err}
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("unexpected argument %q", fs.Arg(0))}
	}
	if *version {
		fmt.Fprintln(stdout, buildinfo.String("roomcastd"))
		return nil
	}
	if err := config.Apply(fs, *cfg, false, "config", "version"); err != nil {
		return usageError{err}
	}
	if *volume < 0 || *volume > 100 {
		return usageError{fmt.Errorf("--volume %d: must be 0-100", *volume)}
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
	if err := os.MkdirAll(*stateDir, 0o700); err != nil {
		return fmt.Errorf("state dir: %w", err)
	}

	tok := *token
	if tok == "" && *tokenFile != "" {
		b, err := os.ReadFile(*tokenFile)
		if err != nil {
			return fmt.Errorf("--token-file: %w", err)
		}
		tok = strings.TrimSpace(string(b))
	}

	errc := make(chan error, 2)
	running := 0
	url := *brokerURL
	if url == "" {
		b, err := broker.New(broker.Options{Addr: *listen, StateDir: *stateDir, MetricsAddr: *metricsListen, Logger: log,
			HeartbeatInterval: *heartbeat, DropAfter: *dropAfter})
		if err != nil {
			return err
		}
		running++
		go func() { errc <- b.Run(ctx) }()
		addr, err := b.Addr(ctx)
		if err != nil {
			return <-errc
		}
		tokPath := filepath.Join(*stateDir, "owner.token")
		if tok, err = ownerToken(ctx, b, tokPath); err != nil {
			return err
		}
		url = "http://" + loopbackFor(addr)
		log.Info("embedded broker ready", "url", "http://"+publicFor(addr), "token_file", tokPath)
		fmt.Fprintf(stderr, "roomcast broker: http://%s  (token in %s)\n", publicFor(addr), tokPath)
	} else if tok == "" {
		return usageError{errors.New("--broker needs --token or --token-file")}
	}

	r, err := receiver.New(receiver.Options{Broker: url, Token: tok, StateDir: *stateDir, Name: *name, Volume: *volume,
		Logger: log, OnStatus: func(s string) { _ = notify.Status(s) }})
	if err != nil {
		return err
	}
	log.Info("receiver starting", "device", r.DeviceID(), "broker", url,
		"audio", "none yet: the player is a silent clock until the audio pipeline lands")
	running++
	go func() { errc <- r.Run(ctx) }()
	_ = notify.Ready()

	var firstErr error
	for ; running > 0; running-- {
		if err := <-errc; err != nil && firstErr == nil {
			firstErr = err
			stop() // one part failed: stop the other
		}
	}
	_ = notify.Stopping()
	return firstErr
}

// ownerToken returns the embedded broker's owner token, creating it (and
// the file, mode 0600) on first start or when the database lost it.
func ownerToken(ctx context.Context, b *broker.Broker, path string) (string, error) {
	if data, err := os.ReadFile(path); err == nil {
		tok := strings.TrimSpace(string(data))
		if _, err := b.Authenticate(ctx, tok); err == nil {
			return tok, nil
		}
	}
	tok, err := b.Store().CreateToken(ctx, "owner", "embedded owner")
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(path+".tmp", []byte(tok+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("owner token: %w", err)
	}
	if err := os.Rename(path+".tmp", path); err != nil {
		return "", fmt.Errorf("owner token: %w", err)
	}
	return tok, nil
}

// loopbackFor is the address the in-process receiver dials.
func loopbackFor(a net.Addr) string {
	ta, ok := a.(*net.TCPAddr)
	if !ok || ta.IP.IsUnspecified() {
		if ok {
			return net.JoinHostPort("127.0.0.1", fmt.Sprint(ta.Port))
		}
	}
	return a.String()
}

// publicFor is the address to show users: the host name when the broker
// listens on every interface.
func publicFor(a net.Addr) string {
	if ta, ok := a.(*net.TCPAddr); ok && ta.IP.IsUnspecified() {
		h, err := os.Hostname()
		if err != nil {
			h = "localhost"
		}
		return net.JoinHostPort(h, fmt.Sprint(ta.Port))
	}
	return a.String()
}
