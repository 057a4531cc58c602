package testenv

import (
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// childEnv makes TestFailInCISkipOtherwise, re-run by itself in a child
// process, run the one check it names (a failing or skipping check ends
// the test that calls it, so each outcome needs a process of its own).
const childEnv = "ROOMCAST_TESTENV_CHILD"

const missingTool = "roomcast-testenv-no-such-tool"

// childCheck is the child's side: it runs one check that cannot be met
// and says so if the check lets it go on.
func childCheck(t *testing.T, check string) {
	switch check {
	case "tool":
		Tool(t, missingTool, "roomcast-testenv-pkg")
	case "root":
		Root(t, "this check")
	case "missing":
		Missing(t, "no %s here", "widget")
	}
	t.Log("CHECK PASSED")
}

// runChild runs this test in a child with check and CI set to ci ("" = unset) and
// returns its output and whether it succeeded.
func runChild(t *testing.T, check, ci string) (string, bool) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestFailInCISkipOtherwise$", "-test.v", "-test.count=1")
	cmd.Env = slices.DeleteFunc(os.Environ(), func(kv string) bool {
		return strings.HasPrefix(kv, "CI=") || strings.HasPrefix(kv, childEnv+"=")
	})
	cmd.Env = append(cmd.Env, childEnv+"="+check)
	if ci != "" {
		cmd.Env = append(cmd.Env, "CI="+ci)
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		if _, ok := err.(*exec.ExitError); !ok {
			t.Fatalf("running the child: %v", err)
		}
	}
	return string(out), err == nil
}

func TestFailInCISkipOtherwise(t *testing.T) {
	if check := os.Getenv(childEnv); check != "" {
		childCheck(t, check)
		return
	}
	checks := map[string]string{
		"tool":    missingTool + " not found: apt-get install roomcast-testenv-pkg",
		"missing": "no widget here",
	}
	if os.Geteuid() != 0 {
		checks["root"] = "needs root"
	} else if out, ok := runChild(t, "root", "true"); !ok || !strings.Contains(out, "CHECK PASSED") {
		t.Errorf("root, running as root: want the check to pass:\n%s", out)
	}
	for check, msg := range checks {
		for _, ci := range []string{"true", "", "1", "false"} {
			out, ok := runChild(t, check, ci)
			switch {
			case strings.Contains(out, "CHECK PASSED"):
				t.Errorf("%s, CI=%q: the test went on past the check:\n%s", check, ci, out)
			case !strings.Contains(out, msg):
				t.Errorf("%s, CI=%q: output lacks %q:\n%s", check, ci, msg, out)
			case ci == "true" && (ok || !strings.Contains(out, "--- FAIL: TestFailInCISkipOtherwise")):
				t.Errorf("%s, CI=true: want a failure:\n%s", check, out)
			case ci != "true" && (!ok || !strings.Contains(out, "--- SKIP: TestFailInCISkipOtherwise")):
				t.Errorf("%s, CI=%q: want a skip:\n%s", check, ci, out)
			}
		}
	}
}

func TestToolFound(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	if got := Tool(t, exe, "none"); got != exe {
		t.Errorf("Tool(%q) = %q", exe, got)
	}
}
