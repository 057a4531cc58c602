// Package testenv holds the one rule for tests that need something the
// machine may not have — an external program, root (for network
// namespaces), a Python module: when it is missing, the test FAILS if the
// environment variable CI equals "true", and is SKIPPED otherwise. A
// developer's machine without sox still runs the rest; CI, which installs
// every tool, cannot pass by quietly skipping. Messages name the Debian
// package to install.
//
// Only that rule lives here. Skips that do not depend on CI (a test that
// cannot run as root, a harness that only fits one setup) stay with their
// tests.
package testenv

import (
	"fmt"
	"os"
	"os/exec"
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
