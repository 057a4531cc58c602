package mpris

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"

	"github.com/roomcast/roomcast/internal/testenv"
	"github.com/roomcast/roomcast/protocol"
)

// policyFile is the shipped system-bus policy.
const policyFile = "../packaging/dbus/org.mpris.MediaPlayer2.roomcast.conf"

// helperEnv makes the test binary run the MPRIS service on the system bus
// instead of tests: TestSystemBusPolicy starts it so as another user.
const helperEnv = "ROOMCAST_MPRIS_TEST_SERVICE"

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) == "1" {
		os.Exit(runHelperService())
	}
	os.Exit(m.Run())
}

// runHelperService runs the service on the system bus (its address from
// DBUS_SYSTEM_BUS_ADDRESS, as in production) until SIGTERM.
func runHelperService() int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	s, err := New(Options{Bus: BusSystem, Broker: os.Getenv("ROOMCAST_TEST_BROKER"), Token: os.Getenv("ROOMCAST_TEST_TOKEN"),
		DeviceID: "sys", Identity: "roomcast (system)", Logger: log, MinBackoff: 100 * time.Millisecond, MaxBackoff: 500 * time.Millisecond})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err := s.Run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// systemBusConfig is a dbus-daemon configuration like Debian's system.conf
// (deny owning names and method calls by default, holes punched by
// included files), listening on dir/system_bus_socket and including
// policy.
func systemBusConfig(t *testing.T, dir, policy string) string {
	t.Helper()
	abs, err := filepath.Abs(policy)
	if err != nil {
		t.Fatal(err)
	}
	conf := `<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-BUS Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path=` + filepath.Join(dir, "system_bus_socket") + `</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <deny own="*"/>
    <deny send_type="method_call"/>
    <allow send_type="signal"/>
    <allow send_requested_reply="true" send_type="method_return"/>
    <allow send_requested_reply="true" send_type="error"/>
    <allow receive_type="method_call"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
    <allow receive_type="signal"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Introspectable"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Properties"/>
  </policy>
  <include>` + abs + `</include>
</busconfig>
`
	path := filepath.Join(dir, "bus.conf")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestSystemBusPolicy proves the shipped policy file on a private
// system-like bus (default: deny owning names and method calls):
//
//   - the file, included verbatim, is accepted by dbus-daemon, and root
//     (not the roomcast user) may not own the name;
//   - the service, run as the policy's user in a separate process (the
//     user roomcast when it exists; otherwise the policy with that one
//     user name replaced by nobody), owns the name, and root, as any
//     other user, reads properties and sends MPRIS commands, which reach
//     the speaker through the broker;
//   - what the policy does not open stays closed: other interfaces on
//     the player, and other names for its owner.
func TestSystemBusPolicy(t *testing.T) {
	testenv.Tool(t, "dbus-daemon", "dbus-daemon")
	testenv.Tool(t, "dbus-send", "dbus-bin")
	testenv.Tool(t, "playerctl", "playerctl")
	policy, err := os.ReadFile(policyFile)
	if err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "mpris-sysbus-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	// The service's user must reach the socket and the test binary.
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}

	verbatimDir := filepath.Join(dir, "verbatim")
	if err := os.Mkdir(verbatimDir, 0o755); err != nil {
		t.Fatal(err)
	}
	verbatim := startDBus(t, "--config-file="+systemBusConfig(t, verbatimDir, policyFile))
	root := testConn(t, verbatim.addr)
	if os.Geteuid() == 0 {
		_, err := root.RequestName(BusName, dbus.NameFlagDoNotQueue)
		mustf(t, isAccessDenied(err), "root owning %s under the shipped policy: %v", BusName, err)
	}

	// Whom the policy lets own the name.
	bus := verbatim
	owner, err := user.Lookup("roomcast")
	if err != nil {
		name := "nobody"
		if os.Geteuid() != 0 {
			cur, err := user.Current()
			if err != nil {
				t.Fatal(err)
			}
			name = cur.Username
		}
		if owner, err = user.Lookup(name); err != nil {
			testenv.Missing(t, "no user roomcast and no user %s to stand in: %v", name, err)
		}
		edited := strings.ReplaceAll(string(policy), `user="roomcast"`, `user="`+name+`"`)
		mustf(t, strings.Count(string(policy), `user="roomcast"`) == 1, "the policy should name user roomcast exactly once")
		p := filepath.Join(dir, "policy.conf")
		if err := os.WriteFile(p, []byte(edited), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("no user roomcast here: the service runs as %s under a copy of the policy naming %s", name, name)
		bus = startDBus(t, "--config-file="+systemBusConfig(t, dir, p))
		root = testConn(t, bus.addr)
	}
	uid, _ := strconv.Atoi(owner.Uid)
	gid, _ := strconv.Atoi(owner.Gid)
	if uid != os.Geteuid() {
		testenv.Root(t, "running the service as "+owner.Username)
	}

	tb := startBroker(t)
	a := newFakeSpeaker(t, tb, "a", "Kitchen")
	a.playAlbum(t, 0, 5_000)

	// The service, as the owner user, in a copy of this test binary.
	bin := testenv.SharedExecutable(t)
	cmd := exec.Command(bin)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), helperEnv+"=1", "DBUS_SYSTEM_BUS_ADDRESS="+bus.addr,
		"ROOMCAST_TEST_BROKER="+tb.url, "ROOMCAST_TEST_TOKEN="+tb.tok)
	var logs strings.Builder
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if uid != os.Geteuid() {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-exited:
			if err != nil {
				t.Errorf("service process: %v\n%s", err, logs.String())
			}
		case <-time.After(wait):
			_ = cmd.Process.Kill()
			<-exited
			t.Errorf("service process did not stop on SIGTERM\n%s", logs.String())
		}
	})
	defer func() {
		if t.Failed() {
			t.Logf("service process output:\n%s", logs.String())
		}
	}()

	waitName(t, root, BusName)
	var ownerUID uint32
	if err := root.BusObject().Call("org.freedesktop.DBus.GetConnectionUnixUser", 0, BusName).Store(&ownerUID); err != nil {
		t.Fatal(err)
	}
	mustf(t, int(ownerUID) == uid, "%s is owned by uid %d, want %s (%d)", BusName, ownerUID, owner.Username, uid)

	// Any user (root here is just another client) reads and controls it.
	obj := root.Object(BusName, objectPath)
	eventually(t, wait, "PlaybackStatus over the system bus", func() (bool, string) {
		v, err := obj.GetProperty(ifacePlayer + ".PlaybackStatus")
		return err == nil && v.Value() == "Playing", fmt.Sprint(v, err)
	})
	sysPlayerctl := func(args ...string) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		c := exec.CommandContext(ctx, "playerctl", args...)
		c.Env = append(os.Environ(), "DBUS_SYSTEM_BUS_ADDRESS="+bus.addr, "DBUS_SESSION_BUS_ADDRESS=unix:path="+filepath.Join(dir, "no-session-bus"))
		out, err := c.Output()
		return strings.TrimSpace(string(out)), err
	}
	out, err := sysPlayerctl("-l")
	mustf(t, err == nil && out == "roomcast", "playerctl -l on the system bus: %q %v", out, err)
	out, err = sysPlayerctl("-p", "roomcast", "pause")
	mustf(t, err == nil, "playerctl pause on the system bus: %q %v", out, err)
	cmdGot := a.nextCommand(t)
	mustf(t, cmdGot.Name == protocol.CmdPause, "speaker got %+v", cmdGot)
	mustf(t, tb.state(t).State.Status == protocol.StatusPaused, "broker state %s", tb.state(t).State.Status)
	xml, err := exec.Command("dbus-send", "--bus="+bus.addr, "--print-reply=literal", "--dest="+BusName, string(objectPath),
		"org.freedesktop.DBus.Introspectable.Introspect").CombinedOutput()
	mustf(t, err == nil && strings.Contains(string(xml), ifacePlayer), "Introspect on the system bus: %v %s", err, xml)

	// Closed: other interfaces on the player's name, and other names.
	err = obj.Call("org.example.NotMPRIS.Do", 0).Err
	mustf(t, isAccessDenied(err), "a call outside the MPRIS interfaces: %v", err)
	if os.Geteuid() == 0 {
		_, err = root.RequestName(BusName+".instance1", dbus.NameFlagDoNotQueue)
		mustf(t, isAccessDenied(err), "root owning an instance name: %v", err)
		out, err := asUser(uid, gid, "dbus-send", "--bus="+bus.addr, "--print-reply", "--dest=org.freedesktop.DBus",
			"/org/freedesktop/DBus", "org.freedesktop.DBus.RequestName", "string:org.example.NotRoomcast", "uint32:4")
		mustf(t, err != nil && strings.Contains(out, "AccessDenied"), "%s owning another name: %v %s", owner.Username, err, out)
		out, err = asUser(uid, gid, "dbus-send", "--bus="+bus.addr, "--print-reply", "--dest=org.freedesktop.DBus",
			"/org/freedesktop/DBus", "org.freedesktop.DBus.RequestName", "string:"+BusName+".instance77", "uint32:4")
		mustf(t, err == nil && strings.Contains(out, "uint32 1"), "%s owning an instance name: %v %s", owner.Username, err, out)
	}
}

func isAccessDenied(err error) bool {
	var de dbus.Error
	return errors.As(err, &de) && de.Name == "org.freedesktop.DBus.Error.AccessDenied"
}

// asUser runs a command as uid:gid and returns its combined output.
func asUser(uid, gid int, name string, args ...string) (string, error) {
	cmd := exec.Command(name, args...)
	if uid != os.Geteuid() {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
	}
	out, err := cmd.CombinedOutput()
	return string(out), err
}
