// Command roomcastd is the roomcast receiver daemon. With --broker it joins
// that broker; without, it runs an embedded broker in the same process and
// joins it over the same websocket any other speaker uses. The daemon
// itself is package speaker; this is its command line.
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
	"strings"
	"syscall"

	"github.com/roomcast/roomcast/buildinfo"
	"github.com/roomcast/roomcast/config"
	"github.com/roomcast/roomcast/speaker"
	"github.com/roomcast/roomcast/systemd"
)

// usageError is bad input: exit 2.
type usageError struct{ error }

func (usageError) Usage() {}

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "roomcastd:", strings.ReplaceAll(err.Error(), "\n", "; "))
		if config.IsUsage(err) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

func run(args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "reset-pairing" {
		return resetPairing(args[1:], stdout, stderr)
	}
	o, err := parseOptions(args, stderr)
	switch {
	case err != nil:
		return err
	case o.version:
		_, err := fmt.Fprintln(stdout, buildinfo.String("roomcastd"))
		return err
	case o.listOutputs:
		return listOutputs(stdout, stderr)
	}
	if err := o.readToken(); err != nil {
		return err
	}
	var level slog.LevelVar
	d, err := speaker.New(o.Config, speaker.Runtime{
		Logger: slog.New(systemd.NewHandler(os.Stderr, &systemd.HandlerOptions{Level: &level})),
		Level:  &level, Notify: systemd.NotifierFromEnv(), Stderr: stderr,
		Reload: func() (speaker.Config, error) {
			no, err := parseOptions(args, stderr)
			if err != nil {
				return speaker.Config{}, err
			}
			return no.Config, nil
		}})
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		for {
			select {
			case <-hup:
				d.Reload(ctx)
			case <-ctx.Done():
				return
			}
		}
	}()
	return d.Run(ctx)
}

// resetPairing is `roomcastd reset-pairing [--state-dir DIR]`.
func resetPairing(args []string, stdout, stderr io.Writer) error {
	rs := flag.NewFlagSet("roomcastd reset-pairing", flag.ContinueOnError)
	rs.SetOutput(stderr)
	sd := rs.String("state-dir", config.DefaultStateDir(), "state directory")
	if err := config.ParseArgs(rs, args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err}
	}
	if err := config.Apply(rs, "", false); err != nil {
		return usageError{err}
	}
	return speaker.ResetPairing(*sd, stdout)
}
