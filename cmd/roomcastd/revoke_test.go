package main

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/roomcast/roomcast/broker/store"
	"github.com/roomcast/roomcast/brokerserver"
	"github.com/roomcast/roomcast/client"
	"github.com/roomcast/roomcast/discovery"
	"github.com/roomcast/roomcast/protocol"
)

// buildDaemon builds roomcastd into a temporary directory.
func buildDaemon(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "roomcastd")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	return bin
}

// daemonProc is a running roomcastd and its log.
type daemonProc struct {
	cmd    *exec.Cmd
	logs   *syncBuf
	exited chan error
}

func startDaemonProc(t *testing.T, bin string, args ...string) *daemonProc {
	t.Helper()
	p := &daemonProc{cmd: exec.Command(bin, args...), logs: &syncBuf{}, exited: make(chan error, 1)}
	// MPRIS on a session bus that is not there: the service retries the
	// bus, while its own broker connection runs (and is refused) as usual.
	p.cmd.Env = append(os.Environ(), "NOTIFY_SOCKET=", "DBUS_SESSION_BUS_ADDRESS=unix:path="+filepath.Join(t.TempDir(), "no-bus"))
	p.cmd.Stderr = p.logs
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.exited <- p.cmd.Wait() }()
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		<-p.exited
		if t.Failed() {
			t.Logf("roomcastd log:\n%s", p.logs.String())
		}
	})
	return p
}

// waitLog waits until the log has n lines matching re and returns the
// last match.
func (p *daemonProc) waitLog(t *testing.T, re *regexp.Regexp, n int) []string {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		if m := re.FindAllStringSubmatch(p.logs.String(), -1); len(m) >= n {
			return m[len(m)-1]
		}
		select {
		case err := <-p.exited:
			p.exited <- err
			t.Fatalf("roomcastd exited (%v) waiting for %q", err, re)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %q in the log within 20 s", re)
		}
	}
}

// online waits until user sees exactly one online speaker on srv.
func online(t *testing.T, srv *brokerserver.Server, user string) string {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		s, err := srv.Broker().Snapshot(context.Background(), user)
		if err == nil && len(s.Devices) == 1 && s.Devices[0].Online {
			return s.Devices[0].ID
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never saw the speaker online: %+v %v", user, s.Devices, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestRevokedSpeakerWaitsForPairing: a real broker revokes the speaker's
// token (close 4004, then 401). The speaker does not exit (under systemd
// it would only be refused again after each restart): it says so, waits
// to be paired, and joins the broker it is paired with next. A revoked
// token that came from a pairing also forgets that pairing (pairing.json
// goes, /v1/info says unpaired), so the speaker can be paired afresh.
func TestRevokedSpeakerWaitsForPairing(t *testing.T) {
	srv, err := brokerserver.New(brokerserver.Options{Listen: "127.0.0.1:0", StateDir: t.TempDir(), MDNS: "off"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	<-srv.Ready()
	st := srv.Broker().Store()
	tok1, _ := st.CreateToken(ctx, "alice", "speaker")

	state := t.TempDir()
	p := startDaemonProc(t, buildDaemon(t), "--broker", srv.LocalURL(), "--token", tok1, "--state-dir", state, "--name", "Den",
		"--mdns", "off", "--pair-listen", "127.0.0.1:0", "--mpris", "session", "--output", "none")
	id := online(t, srv, "alice")

	waiting := regexp.MustCompile(`msg="waiting to be paired" listen=(\S+)`)
	refused := regexp.MustCompile(`waiting to be paired again`)
	pairAndJoin := func(round int, user string) string {
		t.Helper()
		p.waitLog(t, refused, round)
		addr := p.waitLog(t, waiting, round)[1]
		tok, _ := st.CreateToken(ctx, user, "speaker")
		if _, err := discovery.PairWith(ctx, discovery.PairParams{InfoURL: "http://" + addr + discovery.InfoPath,
			BrokerURL: srv.LocalURL(), Token: tok, ExpectID: id}); err != nil {
			t.Fatalf("pairing after the revocation: %v", err)
		}
		if got := online(t, srv, user); got != id {
			t.Fatalf("%s sees %s, want %s", user, got, id)
		}
		return tok
	}

	// 1. The configured token (--token) is revoked.
	if _, err := st.RevokeToken(ctx, tok1); err != nil {
		t.Fatal(err)
	}
	tok2 := pairAndJoin(1, "bob")
	if _, err := os.Stat(filepath.Join(state, discovery.CredentialsFile)); err != nil {
		t.Fatalf("paired, but no %s: %v", discovery.CredentialsFile, err)
	}

	// 2. The pairing's token is revoked: the pairing is forgotten too.
	if _, err := st.RevokeToken(ctx, tok2); err != nil {
		t.Fatal(err)
	}
	p.waitLog(t, refused, 2)
	addr := p.waitLog(t, waiting, 2)[1]
	if _, err := os.Stat(filepath.Join(state, discovery.CredentialsFile)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("%s after its token was revoked: %v", discovery.CredentialsFile, err)
	}
	resp, err := http.Get("http://" + addr + discovery.InfoPath)
	if err != nil {
		t.Fatal(err)
	}
	var info discovery.SpeakerInfo
	json.NewDecoder(resp.Body).Decode(&info)
	resp.Body.Close()
	if info.Paired || info.ID != id {
		t.Fatalf("/v1/info after the revocation: %+v", info)
	}
	pairAndJoin(2, "carol")

	p.cmd.Process.Signal(syscall.SIGTERM)
	if err := <-p.exited; err != nil {
		t.Fatalf("exit after SIGTERM: %v", err)
	}
	p.exited <- nil
}

// TestRevokedOwnerTokenIsReplaced: in single-box mode a revoked owner
// token is replaced at once (owner.token is rewritten) and the speaker
// rejoins its embedded broker with the new one, without a restart.
func TestRevokedOwnerTokenIsReplaced(t *testing.T) {
	state := t.TempDir()
	p := startDaemonProc(t, buildDaemon(t), "--listen", "127.0.0.1:0", "--state-dir", state, "--name", "Kitchen",
		"--mdns", "off", "--pair-listen", "127.0.0.1:0", "--mpris", "off", "--output", "none")
	url := p.waitLog(t, regexp.MustCompile(`roomcast broker: (http://\S+)`), 1)[1]
	tokPath := filepath.Join(state, "owner.token")
	read := func() string { b, _ := os.ReadFile(tokPath); return strings.TrimSpace(string(b)) }
	old := read()
	speakerOnline := func(tok string) bool {
		c, err := client.Dial(context.Background(), url, tok, protocol.Hello{Device: protocol.DeviceInfo{ID: "t", Name: "t",
			Type: protocol.DeviceController}}, client.Options{})
		if err != nil {
			return false
		}
		defer c.Close()
		for _, d := range c.Welcome().Devices {
			if d.Name == "Kitchen" && d.Online {
				return true
			}
		}
		return false
	}
	deadline := time.Now().Add(20 * time.Second)
	for !speakerOnline(old) {
		if time.Now().After(deadline) {
			t.Fatal("the speaker never joined its embedded broker")
		}
		time.Sleep(50 * time.Millisecond)
	}
	// Revoke it as `roomcast-broker token revoke` does: in the database,
	// while the daemon runs on it.
	st, err := store.OpenDir(state)
	if err != nil {
		t.Fatal(err)
	}
	_, err = st.RevokeToken(context.Background(), old)
	st.Close()
	if err != nil {
		t.Fatal(err)
	}
	p.waitLog(t, regexp.MustCompile(`refused the owner token: a new one is in owner.token`), 1)
	renewed := read()
	if renewed == old || renewed == "" {
		t.Fatalf("owner.token after the revocation: %q", renewed)
	}
	for deadline := time.Now().Add(20 * time.Second); !speakerOnline(renewed); {
		if time.Now().After(deadline) {
			t.Fatal("the speaker never rejoined with the new owner token")
		}
		time.Sleep(50 * time.Millisecond)
	}
}
