// Command roomcast is the controller CLI: a device picker for the
// terminal and for scripts (--json on every command).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/roomcast/roomcast/buildinfo"
	"github.com/roomcast/roomcast/client"
	"github.com/roomcast/roomcast/config"
	"github.com/roomcast/roomcast/protocol"
)

const usage = `usage: roomcast [global options] COMMAND [args]

commands:
  devices                         list devices: id, name, type, active, volume, online
  library                         albums and tracks with their URIs, durations and loudness
  status [--follow]               now playing; --follow streams changes
  play [--device ID|NAME] URI...  play tracks or a context (roomcast:album:<id>)
  pause | resume | next | prev
  seek SECONDS                    absolute position in the current track
  volume N                        0-100 on the active device
  shuffle on|off
  repeat off|context|track
  transfer ID|NAME                move playback to that device
  discover [--interfaces LIST]    speakers advertising on the LAN, paired or not
  pair ID|NAME [--pin PIN]        pair an unpaired speaker with this broker and user
  version

global options (before or after the command; also ROOMCAST_<NAME> and --config):
`

// usageError is bad input: exit 2.
type usageError struct{ error }

func (usageError) Usage() {}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	if err == nil || errors.Is(err, flag.ErrHelp) {
		return
	}
	fmt.Fprintln(os.Stderr, "roomcast:", oneLine(err))
	if config.IsUsage(err) {
		os.Exit(2)
	}
	os.Exit(1)
}

func oneLine(err error) string { return strings.ReplaceAll(err.Error(), "\n", "; ") }

// globals are the options every command accepts.
type globals struct {
	broker, token, tokenFile, config string
	json, version                    bool
	timeout                          time.Duration
}

func globalFlags(g *globals, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("roomcast", flag.ContinueOnError)
	fs.SetOutput(stderr)
	config.URLVar(fs, &g.broker, "broker", "http://localhost:4100", "the broker's `URL` (http, https, ws or wss)", "http", "https", "ws", "wss")
	fs.StringVar(&g.token, "token", "", "token (default: the embedded broker's owner.token when readable)")
	fs.StringVar(&g.tokenFile, "token-file", "", "file holding the token")
	fs.StringVar(&g.config, "config", "", "TOML config file (default ~/.config/roomcast/roomcast.toml when present)")
	fs.BoolVar(&g.json, "json", false, "machine-readable output")
	fs.DurationVar(&g.timeout, "timeout", 10*time.Second, "give up after this long")
	fs.BoolVar(&g.version, "version", false, "print the version and exit")
	fs.Usage = func() { fmt.Fprint(stderr, usage); fs.PrintDefaults() }
	return fs
}

// splitGlobals pulls global options out of args wherever they stand.
func splitGlobals(fs *flag.FlagSet, args []string) (global, rest []string, err error) {
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			rest = append(rest, args[i+1:]...)
			break
		}
		if a == "-h" || a == "--help" || a == "-help" {
			global = append(global, a)
			continue
		}
		name, _, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if !strings.HasPrefix(a, "-") || fs.Lookup(name) == nil {
			rest = append(rest, a)
			continue
		}
		global = append(global, a)
		if isBool := name == "json" || name == "version"; !hasValue && !isBool {
			if i+1 >= len(args) {
				return nil, nil, fmt.Errorf("option %s needs a value", a)
			}
			i++
			global = append(global, args[i])
		}
	}
	return global, rest, nil
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var g globals
	fs := globalFlags(&g, stderr)
	gargs, rest, err := splitGlobals(fs, args)
	if err != nil {
		return usageError{err}
	}
	if err := config.ParseArgs(fs, gargs); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err}
	}
	cfgPath, optional := g.config, false
	if cfgPath == "" {
		if dir, err := os.UserConfigDir(); err == nil {
			cfgPath, optional = filepath.Join(dir, "roomcast", "roomcast.toml"), true
		}
	}
	if g.version {
		fmt.Fprintln(stdout, buildinfo.String("roomcast"))
		return nil
	}
	if err := config.Apply(fs, cfgPath, optional, "config", "version"); err != nil {
		return usageError{err}
	}
	if len(rest) == 0 {
		fs.Usage()
		return usageError{errors.New("no command given")}
	}
	cmd, cargs := rest[0], rest[1:]
	if cmd == "version" {
		fmt.Fprintln(stdout, buildinfo.String("roomcast"))
		return nil
	}
	if cmd == "help" {
		fs.Usage()
		return nil
	}
	h, ok := commands[cmd]
	if !ok {
		return usageError{fmt.Errorf("unknown command %q (see roomcast --help)", cmd)}
	}
	var tok string
	if cmd != "discover" { // browsing the LAN needs no broker
		var err error
		if tok, err = resolveToken(&g); err != nil {
			return err
		}
	}
	ctx, cancel := context.WithTimeout(ctx, g.timeout)
	if cmd == "status" && contains(cargs, "--follow", "-follow", "--follow=true") {
		cancel()
		ctx, cancel = context.WithCancel(context.Background())
	}
	defer cancel()
	e := &env{g: g, token: tok, stdout: stdout, stderr: stderr}
	return h(ctx, e, cargs)
}

func contains(list []string, vals ...string) bool {
	for _, a := range list {
		for _, v := range vals {
			if a == v {
				return true
			}
		}
	}
	return false
}

func resolveToken(g *globals) (string, error) {
	if g.token != "" {
		return g.token, nil
	}
	path := g.tokenFile
	if path == "" {
		def := filepath.Join(config.DefaultStateDir(), "owner.token")
		if _, err := os.Stat(def); err != nil {
			return "", usageError{errors.New("no token: pass --token, --token-file or ROOMCAST_TOKEN")}
		}
		path = def
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("token file: %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}

// env is what a command needs.
type env struct {
	g              globals
	token          string
	stdout, stderr io.Writer
	c              *client.Client
}

func (e *env) connect(ctx context.Context) (*client.Client, error) {
	if e.c != nil {
		return e.c, nil
	}
	host, _ := os.Hostname()
	hello := protocol.Hello{ProtocolVersion: protocol.Version, Device: protocol.DeviceInfo{
		ID: fmt.Sprintf("cli-%d", os.Getpid()), Name: "roomcast CLI on " + host, Type: protocol.DeviceController}}
	c, err := client.Dial(ctx, e.g.broker, e.token, hello, client.Options{})
	if err != nil {
		return nil, err
	}
	e.c = c
	return c, nil
}

// api is the client of the broker's HTTP API.
func (e *env) api() (*client.API, error) {
	api, err := client.NewAPI(e.g.broker, e.token)
	if err != nil {
		return nil, usageError{fmt.Errorf("--broker: %w", err)}
	}
	return api, nil
}

func (e *env) printJSON(v any) error {
	enc := json.NewEncoder(e.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

type handler func(ctx context.Context, e *env, args []string) error

var commands = map[string]handler{
	"devices":  cmdDevices,
	"library":  cmdLibrary,
	"status":   cmdStatus,
	"play":     cmdPlay,
	"pause":    simple(protocol.CmdPause),
	"resume":   simple(protocol.CmdResume),
	"next":     simple(protocol.CmdSkipNext),
	"prev":     simple(protocol.CmdSkipPrev),
	"seek":     cmdSeek,
	"volume":   cmdVolume,
	"shuffle":  cmdShuffle,
	"repeat":   cmdRepeat,
	"transfer": cmdTransfer,
	"discover": cmdDiscover,
	"pair":     cmdPair,
}

func noArgs(name string, args []string, n int) error {
	if len(args) != n {
		if n == 0 {
			return usageError{fmt.Errorf("%s takes no arguments", name)}
		}
		return usageError{fmt.Errorf("%s takes %d argument(s), got %d", name, n, len(args))}
	}
	return nil
}

func cmdDevices(ctx context.Context, e *env, args []string) error {
	if err := noArgs("devices", args, 0); err != nil {
		return err
	}
	c, err := e.connect(ctx)
	if err != nil {
		return err
	}
	w := c.Welcome()
	if e.g.json {
		return e.printJSON(struct {
			Devices        []protocol.DeviceInfo `json:"devices"`
			ActiveDeviceID string                `json:"active_device_id,omitempty"`
		}{w.Devices, w.ActiveDeviceID})
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tTYPE\tACTIVE\tVOLUME\tONLINE")
	for _, d := range w.Devices {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\n", d.ID, d.Name, d.Type, yes(d.Active), d.Volume, yes(d.Online))
	}
	return tw.Flush()
}

func yes(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func cmdStatus(ctx context.Context, e *env, args []string) error {
	fs := flag.NewFlagSet("status", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	follow := fs.Bool("follow", false, "stream changes until interrupted")
	if err := fs.Parse(args); err != nil {
		return usageError{err}
	}
	if fs.NArg() > 0 {
		return usageError{errors.New("status takes no arguments besides --follow")}
	}
	c, err := e.connect(ctx)
	if err != nil {
		return err
	}
	w := c.Welcome()
	devices := w.Devices
	offset := w.ServerTimeMS - time.Now().UnixMilli()
	if err := e.printStatus(w.State, devices, offset); err != nil {
		return err
	}
	if !*follow {
		return nil
	}
	for {
		select {
		case f, ok := <-c.Frames():
			if !ok {
				return fmt.Errorf("connection lost: %w", c.Err())
			}
			switch m := f.Msg.(type) {
			case *protocol.PlayerStateChanged:
				if err := e.printStatus(&m.State, devices, offset); err != nil {
					return err
				}
			case *protocol.DeviceStateChanged:
				devices = m.Devices
				if e.g.json {
					if err := e.printJSON(m); err != nil {
						return err
					}
				} else {
					fmt.Fprintf(e.stdout, "device %s: %s\n", deviceName(devices, m.Changed), m.Reason)
				}
			case *protocol.Goodbye:
				return fmt.Errorf("broker going away: %s", m.Reason)
			}
		case <-ctx.Done():
			return nil
		}
	}
}

// deviceName is "Name (id)" for humans.
func deviceName(devs []protocol.DeviceInfo, id string) string {
	if n := nameOf(devs, id); n != "" {
		return n + " (" + id + ")"
	}
	return id
}

func nameOf(devs []protocol.DeviceInfo, id string) string {
	for _, d := range devs {
		if d.ID == id {
			return d.Name
		}
	}
	return ""
}

// statusJSON is `status --json`: the state plus its position now.
type statusJSON struct {
	Device        string                `json:"device,omitempty"`
	DeviceName    string                `json:"device_name,omitempty"`
	Status        protocol.Status       `json:"status"`
	TrackURI      string                `json:"track_uri,omitempty"`
	PositionMS    int64                 `json:"position_ms"`
	PositionAtMS  int64                 `json:"position_at_ms"`
	State         *protocol.PlayerState `json:"state,omitempty"`
	StateVersion  uint64                `json:"state_version,omitempty"`
	ServerTSMilli int64                 `json:"server_ts,omitempty"`
}

func (e *env) printStatus(st *protocol.PlayerState, devs []protocol.DeviceInfo, offset int64) error {
	now := time.Now().UnixMilli() + offset
	if e.g.json {
		out := statusJSON{Status: protocol.StatusIdle, PositionAtMS: now}
		if st != nil {
			out = statusJSON{Device: st.DeviceID, DeviceName: nameOf(devs, st.DeviceID), Status: st.Status,
				PositionMS: st.PositionAt(now), PositionAtMS: now, State: st, StateVersion: st.Version, ServerTSMilli: st.ServerTS}
			if st.Track != nil {
				out.TrackURI = st.Track.URI
			}
		}
		return e.printJSON(out)
	}
	if st == nil {
		_, err := fmt.Fprintln(e.stdout, "nothing has played yet")
		return err
	}
	track := "-"
	if st.Track != nil {
		track = st.Track.URI
		if st.Track.Title != "" {
			track = st.Track.Title
			if st.Track.Artist != "" {
				track = st.Track.Artist + " – " + st.Track.Title
			}
		}
	}
	_, err := fmt.Fprintf(e.stdout, "%s on %s: %s at %s\n", st.Status, deviceName(devs, st.DeviceID), track, clock(st.PositionAt(now)))
	return err
}

func clock(ms int64) string {
	s := ms / 1000
	return fmt.Sprintf("%d:%02d", s/60, s%60)
}

// request sends one command or transfer and reports its outcome.
func (e *env) request(ctx context.Context, m protocol.Message) error {
	c, err := e.connect(ctx)
	if err != nil {
		return err
	}
	ack, err := c.Request(ctx, m)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("no answer from the broker within %s", e.g.timeout)
		}
		return err
	}
	if e.g.json {
		return e.printJSON(ack)
	}
	if ack.State != nil {
		return e.printStatus(ack.State, c.Welcome().Devices, 0)
	}
	_, err = fmt.Fprintln(e.stdout, "ok")
	return err
}

func simple(name protocol.CommandName) handler {
	return func(ctx context.Context, e *env, args []string) error {
		if err := noArgs(string(name), args, 0); err != nil {
			return err
		}
		return e.request(ctx, &protocol.Command{Name: name})
	}
}

func cmdSeek(ctx context.Context, e *env, args []string) error {
	if err := noArgs("seek", args, 1); err != nil {
		return err
	}
	secs, err := config.ParseFloat(args[0])
	if err != nil || secs < 0 || secs > 1e7 {
		return usageError{fmt.Errorf("seek: %q is not a number of seconds >= 0", args[0])}
	}
	ms := int64(secs * 1000)
	return e.request(ctx, &protocol.Command{Name: protocol.CmdSeek, PositionMS: &ms})
}

func cmdVolume(ctx context.Context, e *env, args []string) error {
	if err := noArgs("volume", args, 1); err != nil {
		return err
	}
	v, err := strconv.Atoi(args[0])
	if err != nil || v < 0 || v > 100 {
		return usageError{fmt.Errorf("volume: %q is not a whole number 0-100", args[0])}
	}
	return e.request(ctx, &protocol.Command{Name: protocol.CmdVolume, Volume: &v})
}

func cmdShuffle(ctx context.Context, e *env, args []string) error {
	if err := noArgs("shuffle", args, 1); err != nil {
		return err
	}
	var on bool
	switch args[0] {
	case "on":
		on = true
	case "off":
	default:
		return usageError{fmt.Errorf("shuffle: %q is not on or off", args[0])}
	}
	return e.request(ctx, &protocol.Command{Name: protocol.CmdShuffle, Shuffle: &on})
}

func cmdRepeat(ctx context.Context, e *env, args []string) error {
	if err := noArgs("repeat", args, 1); err != nil {
		return err
	}
	r := protocol.Repeat(args[0])
	if !r.Valid() {
		return usageError{fmt.Errorf("repeat: %q is not off, context or track", args[0])}
	}
	return e.request(ctx, &protocol.Command{Name: protocol.CmdRepeat, Repeat: r})
}

// resolveDevice finds a device by exact id, else by name (case-insensitive).
func resolveDevice(devs []protocol.DeviceInfo, s string) (string, error) {
	for _, d := range devs {
		if d.ID == s {
			return d.ID, nil
		}
	}
	var found []string
	for _, d := range devs {
		if strings.EqualFold(d.Name, s) {
			found = append(found, d.ID)
		}
	}
	switch len(found) {
	case 1:
		return found[0], nil
	case 0:
		return "", fmt.Errorf("no device with id or name %q (see roomcast devices)", s)
	}
	return "", fmt.Errorf("%d devices are named %q: use an id (%s)", len(found), s, strings.Join(found, ", "))
}

func cmdTransfer(ctx context.Context, e *env, args []string) error {
	if err := noArgs("transfer", args, 1); err != nil {
		return err
	}
	c, err := e.connect(ctx)
	if err != nil {
		return err
	}
	id, err := resolveDevice(c.Welcome().Devices, args[0])
	if err != nil {
		return err
	}
	return e.request(ctx, &protocol.TransferPlayback{DeviceID: id})
}

func cmdPlay(ctx context.Context, e *env, args []string) error {
	fs := flag.NewFlagSet("play", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	device := fs.String("device", "", "device id or name (default: the active device)")
	offset := fs.Int("offset", 0, "start at this index of the list or context")
	if err := fs.Parse(args); err != nil {
		return usageError{err}
	}
	uris := fs.Args()
	if len(uris) == 0 {
		return usageError{errors.New("play: give one or more roomcast: URIs")}
	}
	cmd := &protocol.Command{Name: protocol.CmdPlay, Offset: *offset}
	for _, u := range uris {
		kind := strings.Split(u, ":")
		if len(kind) < 3 || kind[0] != protocol.URIScheme {
			return usageError{fmt.Errorf("play: %q is not a roomcast:track:<id> or roomcast:album:<id> URI", u)}
		}
	}
	if len(uris) == 1 && !strings.HasPrefix(uris[0], "roomcast:track:") {
		cmd.ContextURI = uris[0]
	} else {
		cmd.URIs = uris
	}
	if *device != "" {
		c, err := e.connect(ctx)
		if err != nil {
			return err
		}
		id, err := resolveDevice(c.Welcome().Devices, *device)
		if err != nil {
			return err
		}
		cmd.DeviceID = id
	}
	if err := cmd.Validate(); err != nil {
		return usageError{fmt.Errorf("play: %w", err)}
	}
	return e.request(ctx, cmd)
}
