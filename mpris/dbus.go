package mpris

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/godbus/dbus/v5"
	"github.com/godbus/dbus/v5/introspect"
	"github.com/godbus/dbus/v5/prop"
)

// The MPRIS object and its interfaces.
const (
	objectPath  = dbus.ObjectPath("/org/mpris/MediaPlayer2")
	ifaceRoot   = "org.mpris.MediaPlayer2"
	ifacePlayer = "org.mpris.MediaPlayer2.Player"
)

// SupportedMimeTypes are the formats roomcast's library serves.
var SupportedMimeTypes = []string{"audio/ogg", "audio/vorbis", "audio/x-vorbis+ogg"}

// busConn is one connection to the bus with everything exported on it.
// Only Run's goroutine uses it.
type busConn struct {
	conn   *dbus.Conn
	cancel context.CancelFunc // closes conn
	props  *prop.Properties
	name   string // the well-known name owned
}

// setupTimeout bounds connecting, exporting and taking the name.
const setupTimeout = 10 * time.Second

// dialBus connects to addr, exports the MPRIS object of s and takes the
// bus name (BusName, or BusName.instance<pid> when that is taken).
func dialBus(ctx context.Context, addr string, s *Service) (_ *busConn, err error) {
	cctx, cancel := context.WithCancel(ctx)
	timer := time.AfterFunc(setupTimeout, cancel)
	defer func() {
		if !timer.Stop() && err == nil {
			err = fmt.Errorf("D-Bus setup took longer than %s", setupTimeout)
		}
		if err != nil {
			cancel()
		}
	}()
	conn, err := dbus.Connect(addr, dbus.WithContext(cctx))
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", addr, err)
	}
	bc := &busConn{conn: conn, cancel: cancel}
	if err := bc.export(s); err != nil {
		return nil, err
	}
	if bc.name, err = requestName(conn); err != nil {
		return nil, err
	}
	return bc, nil
}

// export puts the MPRIS object on the connection.
func (bc *busConn) export(s *Service) error {
	props, err := prop.Export(bc.conn, objectPath, s.propMap())
	if err != nil {
		return fmt.Errorf("export properties: %w", err)
	}
	bc.props = props
	// Replace prop's own Properties export with one whose Get computes
	// Position when it is read (prop stores values; Position moves).
	if err := bc.conn.Export(positionProps{props, s}, objectPath, "org.freedesktop.DBus.Properties"); err != nil {
		return fmt.Errorf("export properties: %w", err)
	}
	if err := bc.conn.Export(rootObject{s}, objectPath, ifaceRoot); err != nil {
		return fmt.Errorf("export %s: %w", ifaceRoot, err)
	}
	if err := bc.conn.ExportWithMap(playerObject{s}, map[string]string{"OpenURI": "OpenUri", "SeekBy": "Seek"}, objectPath, ifacePlayer); err != nil {
		return fmt.Errorf("export %s: %w", ifacePlayer, err)
	}
	node := introspectNode(props)
	if err := bc.conn.Export(introspect.NewIntrospectable(node), objectPath, "org.freedesktop.DBus.Introspectable"); err != nil {
		return fmt.Errorf("export introspection: %w", err)
	}
	return nil
}

// requestName takes BusName, or BusName.instance<pid> when another
// connection owns it (the MPRIS convention for a second instance).
func requestName(conn *dbus.Conn) (string, error) {
	r, err := conn.RequestName(BusName, dbus.NameFlagDoNotQueue)
	if err != nil {
		return "", fmt.Errorf("request %s: %w%s", BusName, err, policyHint(err))
	}
	if r == dbus.RequestNameReplyPrimaryOwner || r == dbus.RequestNameReplyAlreadyOwner {
		return BusName, nil
	}
	name := fmt.Sprintf("%s.instance%d", BusName, os.Getpid())
	r, err = conn.RequestName(name, dbus.NameFlagDoNotQueue)
	if err != nil {
		return "", fmt.Errorf("request %s: %w%s", name, err, policyHint(err))
	}
	if r != dbus.RequestNameReplyPrimaryOwner && r != dbus.RequestNameReplyAlreadyOwner {
		return "", fmt.Errorf("request %s: %s", name, r)
	}
	return name, nil
}

func policyHint(err error) string {
	var de dbus.Error
	if errors.As(err, &de) && strings.HasSuffix(de.Name, ".AccessDenied") {
		return " (on the system bus, install org.mpris.MediaPlayer2.roomcast.conf in /usr/share/dbus-1/system.d and run as user roomcast)"
	}
	return ""
}

// propMap is the initial value of every property, from the current view.
func (s *Service) propMap() prop.Map {
	v := &s.view
	ro := func(val any, emit prop.EmitType) *prop.Prop { return &prop.Prop{Value: val, Emit: emit} }
	rw := func(val any) *prop.Prop {
		return &prop.Prop{Value: val, Writable: true, Emit: prop.EmitTrue, Callback: s.propertyWrite}
	}
	return prop.Map{
		ifaceRoot: {
			"CanQuit":             ro(false, prop.EmitConst),
			"CanRaise":            ro(false, prop.EmitConst),
			"HasTrackList":        ro(false, prop.EmitConst),
			"Identity":            ro(*s.identity.Load(), prop.EmitTrue),
			"DesktopEntry":        ro(s.opts.DesktopEntry, prop.EmitConst),
			"SupportedUriSchemes": ro([]string{"roomcast"}, prop.EmitConst),
			"SupportedMimeTypes":  ro(slices.Clone(SupportedMimeTypes), prop.EmitConst),
		},
		ifacePlayer: {
			"PlaybackStatus": ro(v.PlaybackStatus, prop.EmitTrue),
			"LoopStatus":     rw(v.LoopStatus),
			"Rate":           rw(1.0),
			"Shuffle":        rw(v.Shuffle),
			"Metadata":       ro(v.Metadata, prop.EmitTrue), // served by positionProps
			"Volume":         rw(v.Volume),
			"Position":       ro(int64(0), prop.EmitFalse), // computed on read: positionProps
			"MinimumRate":    ro(1.0, prop.EmitConst),
			"MaximumRate":    ro(1.0, prop.EmitConst),
			"CanGoNext":      ro(v.CanGoNext, prop.EmitTrue),
			"CanGoPrevious":  ro(v.CanGoPrevious, prop.EmitTrue),
			"CanPlay":        ro(v.CanPlay, prop.EmitTrue),
			"CanPause":       ro(v.CanPause, prop.EmitTrue),
			"CanSeek":        ro(v.CanSeek, prop.EmitTrue),
			"CanControl":     ro(true, prop.EmitConst),
		},
	}
}

// positionProps is org.freedesktop.DBus.Properties: prop's
// implementation (Set, writability, signatures), except that Position is
// computed when read and Metadata is served from the immutable value Run
// publishes (prop would merge maps in place). Its methods run on godbus
// goroutines and read only those atomics.
type positionProps struct {
	*prop.Properties
	s *Service
}

// Get implements org.freedesktop.DBus.Properties.Get.
func (p positionProps) Get(iface, name string) (dbus.Variant, *dbus.Error) {
	if iface == ifacePlayer {
		switch name {
		case "Position":
			return dbus.MakeVariant(p.s.positionUS()), nil
		case "Metadata":
			return dbus.MakeVariant(*p.s.metadata.Load()), nil
		}
	}
	return p.Properties.Get(iface, name)
}

// GetAll implements org.freedesktop.DBus.Properties.GetAll.
func (p positionProps) GetAll(iface string) (map[string]dbus.Variant, *dbus.Error) {
	all, err := p.Properties.GetAll(iface)
	if err == nil && iface == ifacePlayer {
		all["Position"] = dbus.MakeVariant(p.s.positionUS())
		all["Metadata"] = dbus.MakeVariant(*p.s.metadata.Load())
	}
	return all, err
}

// rootObject is org.mpris.MediaPlayer2.
type rootObject struct{ s *Service }

// Raise does nothing: roomcastd has no window (CanRaise is false).
func (rootObject) Raise() *dbus.Error { return nil }

// Quit is refused: roomcastd is a daemon serving the whole house and does
// not quit from a desktop widget (CanQuit is false).
func (rootObject) Quit() *dbus.Error {
	return errNotSupported("roomcastd is a daemon and does not quit over MPRIS (CanQuit is false); use systemctl")
}

// playerObject is org.mpris.MediaPlayer2.Player. Each method waits until
// the broker answered the command it sends.
type playerObject struct{ s *Service }

func (p playerObject) Next() *dbus.Error      { return p.s.call(callMsg{op: opNext}) }
func (p playerObject) Previous() *dbus.Error  { return p.s.call(callMsg{op: opPrevious}) }
func (p playerObject) Pause() *dbus.Error     { return p.s.call(callMsg{op: opPause}) }
func (p playerObject) PlayPause() *dbus.Error { return p.s.call(callMsg{op: opPlayPause}) }
func (p playerObject) Play() *dbus.Error      { return p.s.call(callMsg{op: opPlay}) }

// Stop pauses: a Connect session has no "stopped" state to return to, and
// Play after Stop must continue the same track, which pause gives.
func (p playerObject) Stop() *dbus.Error { return p.s.call(callMsg{op: opStop}) }

// SeekBy (D-Bus name Seek) moves by offset microseconds (relative).
func (p playerObject) SeekBy(offset int64) *dbus.Error {
	return p.s.call(callMsg{op: opSeek, offsetUS: offset})
}

// SetPosition moves to position microseconds if trackID is the current track.
func (p playerObject) SetPosition(trackID dbus.ObjectPath, position int64) *dbus.Error {
	return p.s.call(callMsg{op: opSetPosition, trackID: trackID, offsetUS: position})
}

// OpenURI (D-Bus name OpenUri) plays a roomcast: URI.
func (p playerObject) OpenURI(uri string) *dbus.Error {
	return p.s.call(callMsg{op: opOpenURI, uri: uri})
}

// introspectNode describes the object, with the property signatures
// taken from the exported values.
func introspectNode(props *prop.Properties) *introspect.Node {
	sorted := func(iface string) []introspect.Property {
		ps := props.Introspection(iface)
		slices.SortFunc(ps, func(a, b introspect.Property) int { return strings.Compare(a.Name, b.Name) })
		return ps
	}
	noArgs := func(names ...string) []introspect.Method {
		ms := make([]introspect.Method, len(names))
		for i, n := range names {
			ms[i] = introspect.Method{Name: n}
		}
		return ms
	}
	in := func(name, typ string) introspect.Arg { return introspect.Arg{Name: name, Type: typ, Direction: "in"} }
	player := introspect.Interface{
		Name: ifacePlayer,
		Methods: append(noArgs("Next", "Previous", "Pause", "PlayPause", "Stop", "Play"),
			introspect.Method{Name: "Seek", Args: []introspect.Arg{in("Offset", "x")}},
			introspect.Method{Name: "SetPosition", Args: []introspect.Arg{in("TrackId", "o"), in("Position", "x")}},
			introspect.Method{Name: "OpenUri", Args: []introspect.Arg{in("Uri", "s")}},
		),
		Signals:    []introspect.Signal{{Name: "Seeked", Args: []introspect.Arg{{Name: "Position", Type: "x"}}}},
		Properties: sorted(ifacePlayer),
	}
	root := introspect.Interface{Name: ifaceRoot, Methods: noArgs("Raise", "Quit"), Properties: sorted(ifaceRoot)}
	return &introspect.Node{
		Name:       string(objectPath),
		Interfaces: []introspect.Interface{introspect.IntrospectData, prop.IntrospectData, root, player},
	}
}
