package store

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/roomcast/roomcast/protocol"
)

func TestTokens(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	tok, err := s.CreateToken(ctx, "alice", "test")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(tok, TokenPrefix) || len(tok) < 40 {
		t.Fatalf("token %q looks weak", tok)
	}
	tok2, err := s.CreateToken(ctx, "bob", "")
	if err != nil {
		t.Fatal(err)
	}
	for tk, want := range map[string]string{tok: "alice", tok2: "bob"} {
		got, err := s.Authenticate(ctx, tk)
		if err != nil || got != want {
			t.Fatalf("Authenticate = %q, %v; want %q", got, err, want)
		}
	}
	for _, bad := range []string{"", "rc_", tok + "x", strings.ToUpper(tok), "x" + tok[1:]} {
		if _, err := s.Authenticate(ctx, bad); !errors.Is(err, ErrUnauthorized) {
			t.Errorf("Authenticate(%q) = %v, want ErrUnauthorized", bad, err)
		}
	}
	// A revoked token no longer authenticates; others are untouched.
	if err := s.DeleteToken(ctx, tok2); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Authenticate(ctx, tok2); !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("revoked token: %v", err)
	}
	if u, err := s.Authenticate(ctx, tok); err != nil || u != "alice" {
		t.Fatalf("other token after a revoke: %q %v", u, err)
	}
	for _, bad := range []string{"", "a b", "x/../y", strings.Repeat("a", 65)} {
		if _, err := s.CreateToken(ctx, bad, ""); err == nil {
			t.Errorf("CreateToken accepted user %q", bad)
		}
	}
	// Only the hash is stored: the raw token is nowhere in the file.
	raw, err := os.ReadFile(filepath.Join(dir, FileName))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(raw), tok) {
		t.Fatal("raw token found in the database file")
	}
	if fi, _ := os.Stat(filepath.Join(dir, FileName)); fi.Mode().Perm() != 0o600 {
		t.Fatalf("database mode %v, want 0600", fi.Mode().Perm())
	}
}

func TestDevicesAndStateSurviveReopen(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateToken(ctx, "alice", ""); err != nil {
		t.Fatal(err)
	}
	d := protocol.DeviceInfo{ID: "k1", Name: "Kitchen", Type: protocol.DeviceSpeaker, Volume: 30, Capabilities: []string{"play"}, Online: true}
	seen := time.UnixMilli(1_700_000_000_000)
	if err := s.UpsertDevice(ctx, "alice", d, seen); err != nil {
		t.Fatal(err)
	}
	d.Volume = 31
	if err := s.UpsertDevice(ctx, "alice", d, seen); err != nil {
		t.Fatal(err)
	}
	st := &protocol.PlayerState{DeviceID: "k1", Status: protocol.StatusPlaying, PositionMS: 42, Version: 7, ServerTS: 99}
	if err := s.SaveState(ctx, "alice", "k1", st); err != nil {
		t.Fatal(err)
	}
	s.Close()

	s, err = OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	devs, err := s.Devices(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	want := d
	want.Online = false
	want.LastSeenMS = seen.UnixMilli()
	if len(devs) != 1 || !reflect.DeepEqual(devs[0], want) {
		t.Fatalf("devices = %+v, want [%+v]", devs, want)
	}
	active, got, err := s.LoadState(ctx, "alice")
	if err != nil || active != "k1" || !reflect.DeepEqual(got, st) {
		t.Fatalf("LoadState = %q, %+v, %v", active, got, err)
	}
	if devs, _ := s.Devices(ctx, "bob"); len(devs) != 0 {
		t.Fatalf("bob sees alice's devices: %+v", devs)
	}
	if active, st, err := s.LoadState(ctx, "bob"); active != "" || st != nil || err != nil {
		t.Fatalf("bob's state = %q, %v, %v", active, st, err)
	}
}
