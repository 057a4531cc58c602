package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/roomcast/roomcast/discovery"
)

// defaultGlobalTimeout mirrors the --timeout default of globalFlags: the
// global flag set takes --timeout wherever it stands, so a value other
// than the default is the user's browse time for discover.
const defaultGlobalTimeout = 10 * time.Second

// cmdDiscover: roomcast discover [--interfaces LIST] [--timeout 3s] [--json]
// browses mDNS directly (no broker, no token needed) and prints the
// speakers it found: name, id, type, paired, addresses.
func cmdDiscover(ctx context.Context, e *env, args []string) error {
	fs := flag.NewFlagSet("discover", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	ifaces := fs.String("interfaces", "", "comma-separated interfaces to browse on (default: every up, non-loopback, multicast interface)")
	wait := fs.Duration("timeout", 3*time.Second, "how long to listen")
	jsonOut := fs.Bool("json", false, "machine-readable output")
	if err := fs.Parse(args); err != nil {
		return usageError{err}
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("discover: unexpected argument %q", fs.Arg(0))}
	}
	explicit := false
	fs.Visit(func(f *flag.Flag) { explicit = explicit || f.Name == "timeout" })
	if !explicit && e.g.timeout != defaultGlobalTimeout && e.g.timeout > 0 {
		*wait = e.g.timeout
	}
	if *wait <= 0 || *wait > time.Hour {
		return usageError{fmt.Errorf("discover: --timeout %s: must be above 0 and at most 1h", *wait)}
	}
	spec, err := discovery.ParseInterfaces(*ifaces)
	if err != nil {
		return usageError{fmt.Errorf("discover: %w", err)}
	}
	if spec.Off {
		return usageError{errors.New("discover: --interfaces off leaves nothing to browse")}
	}
	b, err := discovery.NewBrowser(discovery.BrowserOptions{Interfaces: spec})
	if err != nil {
		return err
	}
	// Listen for --timeout, ending a little before the command's deadline.
	bctx, cancel := context.WithTimeout(ctx, *wait)
	defer cancel()
	if dl, ok := ctx.Deadline(); ok {
		var c2 context.CancelFunc
		bctx, c2 = context.WithDeadline(bctx, dl.Add(-200*time.Millisecond))
		defer c2()
	}
	if err := b.Run(bctx); err != nil {
		return fmt.Errorf("discover: %w", err)
	}
	speakers := b.Speakers()
	if e.g.json || *jsonOut {
		if speakers == nil {
			speakers = []discovery.Speaker{}
		}
		return e.printJSON(struct {
			Speakers []discovery.Speaker `json:"speakers"`
		}{speakers})
	}
	if len(speakers) == 0 {
		_, err := fmt.Fprintf(e.stdout, "no speakers found within %s\n", *wait)
		return err
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tID\tTYPE\tPAIRED\tADDRESSES")
	for _, s := range speakers {
		addrs := make([]string, len(s.Addrs))
		for i, a := range s.Addrs {
			addrs[i] = net.JoinHostPort(a.String(), strconv.Itoa(s.Port))
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", s.Name, s.ID, s.Type, yes(s.Paired), strings.Join(addrs, " "))
	}
	return tw.Flush()
}
