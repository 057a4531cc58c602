package store

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
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

func TestListAndRevokeTokens(t *testing.T) {
	ctx := context.Background()
	s, err := OpenDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	start := time.Now().UnixMilli()
	var toks []string
	for _, u := range []string{"alice", "alice", "bob"} {
		tok, err := s.CreateToken(ctx, u, "label of "+u)
		if err != nil {
			t.Fatal(err)
		}
		toks = append(toks, tok)
	}
	all, err := s.Tokens(ctx, "")
	if err != nil || len(all) != 3 {
		t.Fatalf("Tokens: %v %v", all, err)
	}
	alice, _ := s.Tokens(ctx, "alice")
	if len(alice) != 2 || alice[0].User != "alice" || alice[0].Label != "label of alice" || alice[0].CreatedMS < start {
		t.Fatalf("alice's tokens: %+v", alice)
	}
	for _, ti := range all {
		if len(ti.ID) != TokenIDLen || !isHex(ti.ID) {
			t.Fatalf("token id %q", ti.ID)
		}
		for _, tok := range toks {
			if strings.Contains(tok, ti.ID) {
				t.Fatalf("the id %q is part of the secret", ti.ID)
			}
		}
	}
	idOf := func(tok string) string { return HashToken(tok)[:TokenIDLen] }
	if none, _, _ := s.RevokedSince(ctx, 0); len(none) != 0 {
		t.Fatalf("revocations before any: %v", none)
	}

	// Refused references change nothing.
	for _, bad := range []string{"", "xyz", "1234567", "rc_unknown", strings.Repeat("g", 12), "0000000000000", strings.Repeat("a", 65)} {
		if _, err := s.RevokeToken(ctx, bad); err == nil {
			t.Errorf("RevokeToken(%q) succeeded", bad)
		}
	}
	if n, _ := s.Tokens(ctx, ""); len(n) != 3 {
		t.Fatalf("a refused revoke removed a token: %d left", len(n))
	}

	// By id (8 digits, upper case too), then by the token itself.
	got, err := s.RevokeToken(ctx, strings.ToUpper(idOf(toks[0])[:8]))
	if err != nil || got.ID != idOf(toks[0]) || got.User != "alice" {
		t.Fatalf("revoke by id: %+v %v", got, err)
	}
	if got, err := s.RevokeToken(ctx, toks[2]); err != nil || got.User != "bob" {
		t.Fatalf("revoke by token: %+v %v", got, err)
	}
	if _, err := s.RevokeToken(ctx, toks[2]); !errors.Is(err, ErrNoSuchToken) {
		t.Fatalf("second revoke: %v, want ErrNoSuchToken", err)
	}
	for i, want := range []bool{false, true, false} {
		_, err := s.Authenticate(ctx, toks[i])
		if (err == nil) != want {
			t.Fatalf("token %d authenticates: %v, want %v", i, err == nil, want)
		}
	}
	hashes, newest, err := s.RevokedSince(ctx, start)
	if err != nil || len(hashes) != 2 || newest < start {
		t.Fatalf("RevokedSince: %v %d %v", hashes, newest, err)
	}
	if !slices.Contains(hashes, HashToken(toks[0])) || !slices.Contains(hashes, HashToken(toks[2])) {
		t.Fatalf("RevokedSince: %v", hashes)
	}
	if later, _, _ := s.RevokedSince(ctx, newest+1); len(later) != 0 {
		t.Fatalf("revocations after the newest: %v", later)
	}
	// DeleteToken (the picker API's clean-up) is a revocation too.
	if err := s.DeleteToken(ctx, toks[1]); err != nil {
		t.Fatal(err)
	}
	if h, _, _ := s.RevokedSince(ctx, newest); !slices.Contains(h, HashToken(toks[1])) {
		t.Fatalf("DeleteToken not recorded as a revocation: %v", h)
	}
}
