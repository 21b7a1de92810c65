//go:build integration

package integration

import (
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"
)

// TestCSISanityCommand runs the csi-sanity command, built from the
// csi-test module go.mod names, against `rexray serve` in host mode over
// real loop devices: every spec passes, and those skipped are the 31 of the
// capabilities rexray does not advertise (csi/sanity_test.go lists them).
func TestCSISanityCommand(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "csi-sanity")
	build := exec.Command("go", "build", "-o", bin, "github.com/kubernetes-csi/csi-test/v5/cmd/csi-sanity")
	build.Dir = suite.repo
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build csi-sanity: %v\n%s", err, out)
	}
	h := startHostPlugin(t, "csi")
	dir := t.TempDir()
	cmd := exec.Command(bin, "--csi.endpoint=unix://"+h.sock, "--csi.testvolumesize=1073741824",
		"--csi.mountdir="+filepath.Join(dir, "mnt"), "--csi.stagingdir="+filepath.Join(dir, "staging"))
	out, err := cmd.CombinedOutput()
	summary := regexp.MustCompile(`(\d+) Passed \| (\d+) Failed \| (\d+) Pending \| (\d+) Skipped`).FindSubmatch(stripColour(out))
	if err != nil || summary == nil {
		t.Fatalf("csi-sanity: %v\n%s", err, out)
	}
	t.Logf("csi-sanity: %s passed, %s failed, %s pending, %s skipped", summary[1], summary[2], summary[3], summary[4])
	if string(summary[2]) != "0" || string(summary[4]) != "31" {
		t.Errorf("csi-sanity: %s failed and %s skipped, want 0 failed and the 31 of capabilities not advertised\n%s", summary[2], summary[4], out)
	}
}

var colour = regexp.MustCompile("\x1b\\[[0-9;]*m")

func stripColour(b []byte) []byte { return colour.ReplaceAll(b, nil) }
