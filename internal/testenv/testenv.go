// Package testenv holds the one rule for tests that need something the
// machine may not have — an external program, root (for network
// namespaces), a Python module: when it is missing, the test FAILS if the
// environment variable CI equals "true", and is SKIPPED otherwise. A
// developer's machine without sox still runs the rest; CI, which installs
// every tool, cannot pass by quietly skipping. Messages name the Debian
// package to install.
//
// No test skips for any other reason. Tests that must not run as root
// run themselves again as another user (RerunAs, SharedExecutable).
package testenv

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// Missing applies the rule to a precondition that does not hold: it fails
// the test when CI=true and skips it otherwise, with the formatted message.
func Missing(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if os.Getenv("CI") == "true" {
		t.Fatal(msg + " (required when CI=true)")
	}
	t.Skip(msg + " (set CI=true to make this a failure)")
}

// Tool returns the path of the program name (looked up like
// exec.LookPath, so an absolute path also works). When it is missing,
// Missing fails or skips the test, naming aptPackage, the Debian package
// (or packages) that provide it.
func Tool(t testing.TB, name, aptPackage string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		Missing(t, "%s not found: apt-get install %s", name, aptPackage)
	}
	return p
}

// Root requires the test to run as root; why says what needs it (e.g.
// "network namespaces"). Otherwise Missing fails or skips the test.
func Root(t testing.TB, why string) {
	t.Helper()
	if uid := os.Geteuid(); uid != 0 {
		Missing(t, "running as uid %d: %s needs root", uid, why)
	}
}

// SharedExecutable copies the running test binary into a new directory
// that every user may enter and returns the copy's path: a test that runs
// part of itself as another user starts that copy (the go tool builds test
// binaries in a directory private to whoever ran it).
func SharedExecutable(t testing.TB) string {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	// Not t.TempDir: it lies inside a directory only its owner may enter.
	dir, err := os.MkdirTemp("", "roomcast-shared-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, filepath.Base(exe))
	CopyFile(t, exe, bin, 0o755)
	return bin
}

// CopyFile copies src to dst (created with mode perm, its directory too),
// failing t on any error.
func CopyFile(t testing.TB, src, dst string, perm os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		t.Fatal(err)
	}
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, perm)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

// RerunAs runs the calling test again, alone, in a copy of the test
// binary as the user named name, from the current directory, and fails t
// unless that run passes (a skip there counts as a failure). The caller
// must be root and return after RerunAs; in the child os.Geteuid() is the
// user's. A missing user is Missing.
func RerunAs(t *testing.T, name string) {
	t.Helper()
	u, err := user.Lookup(name)
	if err != nil {
		Missing(t, "no user %s to run %s as: %v", name, t.Name(), err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	cmd := exec.Command(SharedExecutable(t), "-test.run=^"+t.Name()+"$", "-test.v", "-test.count=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS: "+t.Name()) {
		t.Fatalf("%s as user %s: %v\n%s", t.Name(), name, err, out)
	}
	t.Logf("ran as user %s (uid %d): passed", name, uid)
}

// Logger logs through t.Log at debug level when the test runs with -v,
// and is nil (discard) otherwise.
func Logger(t testing.TB) *slog.Logger {
	if !testing.Verbose() {
		return nil
	}
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}
