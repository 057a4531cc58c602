package systemd

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/roomcast/roomcast/internal/testenv"
)

// The unit files are checked with systemd-analyze:
//
//   - verify: systemd-analyze refuses units whose ExecStart= binary does not
//     exist, so each unit is copied into a temp dir (keeping its unit name)
//     with /usr/bin/roomcastd and /usr/bin/roomcast-broker rewritten to a stub
//     script there. verify exits 0 even for unknown keys or unparsable
//     values, so any output line that mentions the unit counts as a failure.
//     User units are verified with --user and a private XDG_RUNTIME_DIR.
//   - security --offline=yes: the exposure score is parsed from the
//     "Overall exposure level for X: N.N" line. The user unit is not scored:
//     offline analysis assumes it runs as root, which is meaningless.
//
// Each check also runs on a deliberately broken copy, so it provably can fail.

var binaries = []string{"/usr/bin/roomcastd", "/usr/bin/roomcast-broker"}

// stageUnit copies unit file src into a fresh dir as name, applying edit (may
// be nil) and pointing ExecStart= at an existing stub. It returns the path.
func stageUnit(t *testing.T, src, name string, edit func(string) string) string {
	t.Helper()
	text, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	stub := filepath.Join(dir, "stub")
	if err := os.WriteFile(stub, []byte("#!/bin/sh\nexit 0\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	unit := string(text)
	replaced := false
	for _, b := range binaries {
		if strings.Contains(unit, "ExecStart="+b) {
			unit = strings.ReplaceAll(unit, "ExecStart="+b, "ExecStart="+stub)
			replaced = true
		}
	}
	if !replaced {
		t.Fatalf("%s: ExecStart= does not start one of %v", src, binaries)
	}
	if edit != nil {
		unit = edit(unit)
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(unit), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// verifyProblems runs systemd-analyze verify and returns the complaints about
// the unit (other units' noise is only logged).
func verifyProblems(t *testing.T, tool, path string, user bool) []string {
	t.Helper()
	args := []string{"verify", "--man=no", "--recursive-errors=no", path}
	if user {
		args = append([]string{"--user"}, args...)
	}
	cmd := exec.Command(tool, args...)
	cmd.Env = os.Environ()
	if user {
		cmd.Env = append(cmd.Env, "XDG_RUNTIME_DIR="+t.TempDir())
	}
	out, err := cmd.CombinedOutput()
	var problems []string
	if err != nil {
		problems = append(problems, "exit: "+err.Error())
	}
	name := filepath.Base(path)
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		switch {
		case line == "":
		case strings.Contains(line, name), err != nil:
			problems = append(problems, line)
		default:
			t.Logf("systemd-analyze (other unit): %s", line)
		}
	}
	return problems
}

func TestUnitsVerify(t *testing.T) {
	tool := testenv.Tool(t, "systemd-analyze", "systemd")
	breakType := func(s string) string { return strings.Replace(s, "Type=notify", "Type=notify-bogus", 1) }
	unknownKey := func(s string) string { return strings.Replace(s, "[Service]", "[Service]\nProtectEverything=yes", 1) }
	cases := []struct {
		name        string
		src, unit   string
		user        bool
		edit        func(string) string
		wantProblem bool
	}{
		{"roomcastd", "roomcastd.service", "roomcastd.service", false, nil, false},
		{"broker", "roomcast-broker.service", "roomcast-broker.service", false, nil, false},
		{"user", "roomcastd.user.service", "roomcastd.service", true, nil, false},
		{"control: bad Type", "roomcastd.service", "roomcastd.service", false, breakType, true},
		{"control: unknown key", "roomcast-broker.service", "roomcast-broker.service", false, unknownKey, true},
		{"control: user bad Type", "roomcastd.user.service", "roomcastd.service", true, breakType, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := stageUnit(t, tc.src, tc.unit, tc.edit)
			problems := verifyProblems(t, tool, path, tc.user)
			if tc.wantProblem && len(problems) == 0 {
				t.Fatal("verify reported nothing for a broken unit")
			}
			if !tc.wantProblem && len(problems) > 0 {
				t.Fatalf("verify %s:\n%s", tc.src, strings.Join(problems, "\n"))
			}
		})
	}
}

var exposureRE = regexp.MustCompile(`Overall exposure level for (\S+): ([0-9]+\.[0-9]+)`)

// exposure runs the offline security analysis and returns the overall score.
func exposure(t *testing.T, tool, path string) float64 {
	t.Helper()
	// --threshold=100 keeps the exit status 0 so the score is always parsed;
	// the limits are asserted by the caller.
	out, err := exec.Command(tool, "security", "--offline=yes", "--threshold=100", path).CombinedOutput()
	if err != nil {
		t.Fatalf("systemd-analyze security %s: %v\n%s", path, err, out)
	}
	m := exposureRE.FindSubmatch(out)
	if m == nil || string(m[1]) != filepath.Base(path) {
		t.Fatalf("no exposure line for %s in:\n%s", filepath.Base(path), out)
	}
	score, err := strconv.ParseFloat(string(m[2]), 64)
	if err != nil {
		t.Fatal(err)
	}
	return score
}

func TestUnitsSecurityExposure(t *testing.T) {
	tool := testenv.Tool(t, "systemd-analyze", "systemd")
	// unharden keeps only [Unit] and the Exec/Type lines: a plain root service.
	unharden := func(s string) string {
		var kept []string
		for _, line := range strings.Split(s, "\n") {
			if !strings.Contains(line, "=") || strings.HasPrefix(line, "Exec") ||
				strings.HasPrefix(line, "Type=") || strings.HasPrefix(line, "Description=") {
				kept = append(kept, line)
			}
		}
		return strings.Join(kept, "\n")
	}
	cases := []struct {
		name      string
		src       string
		edit      func(string) string
		max, min  float64
		threshold string // also checked via systemd-analyze's own exit status
	}{
		{"roomcastd", "roomcastd.service", nil, 1.5, 0, "15"},
		{"broker", "roomcast-broker.service", nil, 1.5, 0, "15"},
		{"control: unhardened", "roomcastd.service", unharden, 10, 5, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := stageUnit(t, tc.src, tc.src, tc.edit)
			score := exposure(t, tool, path)
			t.Logf("%s: overall exposure %.1f", tc.src, score)
			if score > tc.max || score < tc.min {
				t.Fatalf("%s exposure %.1f, want within [%.1f, %.1f]", tc.src, score, tc.min, tc.max)
			}
			if tc.threshold != "" {
				cmd := exec.Command(tool, "security", "--offline=yes", "--threshold="+tc.threshold, path)
				var out bytes.Buffer
				cmd.Stdout, cmd.Stderr = &out, &out
				if err := cmd.Run(); err != nil {
					t.Fatalf("security --threshold=%s: %v\n%s", tc.threshold, err, out.String())
				}
			}
		})
	}
}

// TestSysusers applies roomcast.sysusers.conf to a scratch root and checks
// that it creates the system user roomcastd.service runs as, in group audio.
func TestSysusers(t *testing.T) {
	testenv.Tool(t, "systemd-analyze", "systemd") // same availability rule: part of the systemd tool set
	tool := testenv.Tool(t, "systemd-sysusers", "systemd")
	text, err := os.ReadFile("roomcast.sysusers.conf")
	if err != nil {
		t.Fatal(err)
	}
	dropMembership := func(s string) string { return strings.ReplaceAll(s, "m roomcast audio", "") }
	cases := []struct {
		name      string
		edit      func(string) string
		wantAudio bool
	}{
		{"as shipped", nil, true},
		{"control: no audio membership", dropMembership, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			if err := os.MkdirAll(filepath.Join(root, "etc"), 0o755); err != nil {
				t.Fatal(err)
			}
			files := map[string]string{
				"etc/passwd": "root:x:0:0:root:/root:/bin/sh\n",
				"etc/group":  "root:x:0:\naudio:x:29:\n",
			}
			conf := string(text)
			if tc.edit != nil {
				conf = tc.edit(conf)
			}
			files["roomcast.conf"] = conf
			for name, content := range files {
				if err := os.WriteFile(filepath.Join(root, name), []byte(content), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			out, err := exec.Command(tool, "--root="+root, filepath.Join(root, "roomcast.conf")).CombinedOutput()
			if err != nil {
				t.Fatalf("systemd-sysusers: %v\n%s", err, out)
			}
			passwd, _ := os.ReadFile(filepath.Join(root, "etc/passwd"))
			group, _ := os.ReadFile(filepath.Join(root, "etc/group"))
			user := regexp.MustCompile(`(?m)^roomcast:x:([0-9]+):[0-9]+:[^:]*:/var/lib/roomcast:\S*nologin$`).FindSubmatch(passwd)
			if user == nil {
				t.Fatalf("no roomcast system user in passwd:\n%s", passwd)
			}
			if uid, _ := strconv.Atoi(string(user[1])); uid <= 0 || uid >= 1000 {
				t.Errorf("roomcast uid %d is not a system uid", uid)
			}
			inAudio := regexp.MustCompile(`(?m)^audio:x:29:(.*,)?roomcast(,.*)?$`).Match(group)
			if inAudio != tc.wantAudio {
				t.Fatalf("roomcast in audio = %v, want %v; group:\n%s", inAudio, tc.wantAudio, group)
			}
		})
	}
}
