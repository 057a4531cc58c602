package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestScanCommand(t *testing.T) {
	music := t.TempDir()
	for _, f := range []string{"gapless-01.ogg", "gapless-02.ogg", "levels-01.ogg"} {
		b, err := os.ReadFile(filepath.Join("../../demo", f))
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(music, f), b, 0o644)
	}
	os.WriteFile(filepath.Join(music, "broken.ogg"), []byte("OggS but not really"), 0o644)
	var out, errb bytes.Buffer
	state := t.TempDir()
	if err := run([]string{"scan", "--music", music, "--state-dir", state}, &out, &errb); err != nil {
		t.Fatalf("scan: %v\n%s", err, errb.String())
	}
	s := out.String()
	if !strings.Contains(s, "3 tracks in 2 albums, 3 measured") || !strings.Contains(s, "broken.ogg") {
		t.Fatalf("scan summary:\n%s", s)
	}
	if _, err := os.Stat(filepath.Join(state, "library.db")); err != nil {
		t.Fatal(err)
	}
	// A second scan reads nothing new.
	out.Reset()
	if err := run([]string{"scan", "--music", music, "--state-dir", state}, &out, &errb); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "0 decoded") {
		t.Fatalf("rescan decoded again:\n%s", out.String())
	}
	for _, args := range [][]string{{"scan"}, {"scan", "--music", filepath.Join(music, "nope")}} {
		if err := run(args, &out, &errb); err == nil {
			t.Errorf("%v succeeded", args)
		}
	}
}

func TestTokenCommands(t *testing.T) {
	state := t.TempDir()
	tok := func(args ...string) (string, string, error) {
		var out, errb bytes.Buffer
		err := run(append([]string{"token"}, args...), &out, &errb)
		return out.String(), errb.String(), err
	}
	var created []string
	for _, u := range []string{"alice", "bob"} {
		out, _, err := tok("create", "--user", u, "--label", "phone of "+u, "--state-dir", state)
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSpace(out), "\n")
		created = append(created, lines[len(lines)-1])
	}
	out, _, err := tok("list", "--state-dir", state)
	if err != nil || !strings.Contains(out, "alice") || !strings.Contains(out, "phone of bob") || strings.Contains(out, created[0]) {
		t.Fatalf("list: %v\n%s", err, out)
	}
	out, _, err = tok("list", "--json", "--user", "alice", "--state-dir", state)
	var listed struct {
		Tokens []struct{ ID, User, Label string }
	}
	if err != nil || json.Unmarshal([]byte(out), &listed) != nil || len(listed.Tokens) != 1 || listed.Tokens[0].User != "alice" {
		t.Fatalf("list --json --user alice: %v\n%s", err, out)
	}
	// Bad input: usage errors (exit 2) or a clear "no such token" (exit 1).
	for _, args := range [][]string{{}, {"frob"}, {"revoke", "--state-dir", state}, {"revoke", "a", "b", "--state-dir", state},
		{"revoke", "zz", "--state-dir", state}, {"list", "extra", "--state-dir", state}, {"create", "--user", "a b", "--state-dir", state}} {
		if _, _, err := tok(args...); err == nil {
			t.Errorf("token %v succeeded", args)
		}
	}
	_, _, err = tok("revoke", "00000000", "--state-dir", state)
	var ue usageError
	if err == nil || errors.As(err, &ue) || !strings.Contains(err.Error(), "no such token") {
		t.Fatalf("revoking an unknown id: %v", err)
	}
	// Revoke alice's by id (flags after the argument work too).
	out, _, err = tok("revoke", listed.Tokens[0].ID, "--state-dir", state)
	if err != nil || !strings.Contains(out, "revoked token "+listed.Tokens[0].ID) || !strings.Contains(out, `"alice"`) {
		t.Fatalf("revoke: %v\n%s", err, out)
	}
	out, _, _ = tok("list", "--json", "--state-dir", state)
	if err := json.Unmarshal([]byte(out), &listed); err != nil || len(listed.Tokens) != 1 || listed.Tokens[0].User != "bob" {
		t.Fatalf("after the revoke: %s", out)
	}
	// ...and bob's by the token itself.
	if _, _, err := tok("revoke", created[1], "--state-dir", state); err != nil {
		t.Fatal(err)
	}
	out, _, _ = tok("list", "--json", "--state-dir", state)
	if !strings.Contains(out, `"tokens": []`) {
		t.Fatalf("after both revokes: %s", out)
	}
}
