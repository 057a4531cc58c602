package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"strings"

	"github.com/roomcast/roomcast/protocol/httpapi"
)

// cmdPair: roomcast pair ID|NAME [--pin PIN] asks the broker to pair a
// speaker it sees on the LAN with the caller's user.
func cmdPair(ctx context.Context, e *env, args []string) error {
	fs := flag.NewFlagSet("pair", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	pin := fs.String("pin", "", "the speaker's setup PIN, when it has one")
	// Accept the speaker before or after --pin.
	var target string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		target, args = args[0], args[1:]
	}
	if err := fs.Parse(args); err != nil {
		return usageError{err}
	}
	if target == "" && fs.NArg() == 1 {
		target = fs.Arg(0)
	} else if fs.NArg() > 0 || target == "" {
		return usageError{errors.New("usage: roomcast pair ID|NAME [--pin PIN]")}
	}
	api, err := e.api()
	if err != nil {
		return err
	}
	speakers, err := api.Speakers(ctx)
	if err != nil {
		return err
	}
	id := ""
	var names []string
	for _, s := range speakers {
		switch {
		case s.Info.ID == target:
			id = s.Info.ID
		case strings.EqualFold(s.Name, target):
			names = append(names, s.Info.ID)
		}
	}
	if id == "" {
		switch len(names) {
		case 0:
			return fmt.Errorf("the broker sees no speaker %q on the LAN (see roomcast discover)", target)
		case 1:
			id = names[0]
		default:
			return fmt.Errorf("%d speakers are named %q: use an id (%s)", len(names), target, strings.Join(names, ", "))
		}
	}
	out, err := api.Pair(ctx, httpapi.PairRequest{DeviceID: id, PIN: *pin})
	if err != nil {
		return err
	}
	if e.g.json {
		return e.printJSON(out)
	}
	_, err = fmt.Fprintf(e.stdout, "paired %s (%s): it joins this broker now\n", out.Name, out.DeviceID)
	return err
}
