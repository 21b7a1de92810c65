//go:build integration

package integration

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// rexray runs the operator CLI on the host against the managed plugin, as
// an operator would: same ledger (so it goes through the plugin's socket),
// same store.
func rexray(t *testing.T, args ...string) string {
	t.Helper()
	out, err := rexrayErr(args...)
	if err != nil {
		t.Fatalf("rexray %s: %v", strings.Join(args, " "), err)
	}
	return out
}

func rexrayErr(args ...string) (string, error) {
	id, _ := suite.docker("plugin", "inspect", "--format", "{{.Id}}", plugin)
	return runRexray(id, []string{
		"REXRAY_STATEDIR=" + suite.state,
		"LOOPBACK_VOLUMEPATH=" + suite.store,
		"DOCKER_ROOT=" + filepath.Join(suite.dir, "d", "root"),
	}, args...)
}

// runRexray runs the operator CLI against the managed plugin of that ID,
// with env added to the environment.
func runRexray(id string, env []string, args ...string) (string, error) {
	cmd := exec.Command(filepath.Join(suite.repo, "bin", "rexray"), args...)
	cmd.Env = append(append(os.Environ(),
		"REXRAY_HOST=unix://"+filepath.Join("/run/docker/plugins", id, "rexray.sock")), env...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return string(out), &cmdError{err, stderr.String()}
	}
	return string(out), nil
}

type cmdError struct {
	err    error
	stderr string
}

func (e *cmdError) Error() string { return e.err.Error() + ": " + strings.TrimSpace(e.stderr) }

// testSnapshotsAndCLI: a snapshot of a volume in use (taken with the CLI
// through the running plugin) holds what was written before it; a volume
// created from it with -o snapshotName holds the same; inspect lists it;
// the snapshot outlives its volume.
func testSnapshotsAndCLI(t *testing.T) {
	mustDocker(t, "volume", "create", "-d", plugin, "-o", "size=64MiB", "snapsrc")
	mustDocker(t, "run", "-d", "--name", "snapwriter", "-v", "snapsrc:/data", "busybox", "sh", "-c", "echo first > /data/f; sleep 600")
	defer suite.docker("rm", "-f", "snapwriter")
	waitFor(t, "the writer", 20*time.Second, func() bool {
		out, _ := suite.docker("exec", "snapwriter", "cat", "/data/f")
		return out == "first"
	})
	if out := rexray(t, "snapshot", "create", "snapsrc", "snap1"); !strings.Contains(out, "snap1") || !strings.Contains(out, "snapsrc") {
		t.Errorf("snapshot create printed %q", out)
	}
	mustDocker(t, "exec", "snapwriter", "sh", "-c", "echo second >> /data/f")

	mustDocker(t, "volume", "create", "-d", plugin, "-o", "snapshotName=snap1", "fromsnap")
	if out := mustDocker(t, "run", "--rm", "-v", "fromsnap:/data", "busybox", "cat", "/data/f"); out != "first" {
		t.Errorf("the volume from the snapshot holds %q, want what was written before the snapshot", out)
	}
	if out := mustDocker(t, "volume", "inspect", "--format", "{{.Status.fields.snapshots}}", "snapsrc"); out != "snap1" {
		t.Errorf("inspect snapsrc: fields.snapshots = %q, want snap1", out)
	}
	if out := mustDocker(t, "volume", "inspect", "--format", "{{.Status.fields.snapshot}}", "fromsnap"); out != "snap1" {
		t.Errorf("inspect fromsnap: fields.snapshot = %q, want snap1", out)
	}

	// The CLI's view: the writer's mount, and a mount of its own whose
	// path the host can read.
	var vols []struct {
		Name       string
		Service    string
		MountIDs   []string
		Mountpoint string
	}
	if err := json.Unmarshal([]byte(rexray(t, "volume", "ls", "--format", "json")), &vols); err != nil {
		t.Fatal(err)
	}
	seen := 0
	for _, v := range vols {
		if v.Name == "snapsrc" {
			seen++
			if len(v.MountIDs) != 1 || v.Service != "loopback" {
				t.Errorf("volume ls: snapsrc %+v, want one mount, service loopback", v)
			}
		}
	}
	if seen != 1 {
		t.Errorf("volume ls lists snapsrc %d times", seen)
	}
	path := strings.TrimSpace(rexray(t, "volume", "mount", "fromsnap"))
	if b, err := os.ReadFile(inEngine(filepath.Join(path, "f"))); string(b) != "first\n" {
		t.Errorf("rexray volume mount printed %q; reading f there: %q, %v", path, b, err)
	}
	rexray(t, "volume", "unmount", "fromsnap")
	released(t, "fromsnap")

	mustDocker(t, "rm", "-f", "snapwriter")
	released(t, "snapsrc")
	mustDocker(t, "volume", "rm", "snapsrc")
	if out := rexray(t, "snapshot", "ls"); !strings.Contains(out, "snap1") {
		t.Errorf("the snapshot went with its volume: snapshot ls = %q", out)
	}
	mustDocker(t, "volume", "create", "-d", plugin, "-o", "snapshotID=snap1", "fromsnap2")
	if out := mustDocker(t, "run", "--rm", "-v", "fromsnap2:/data", "busybox", "cat", "/data/f"); out != "first" {
		t.Errorf("a volume from the snapshot of a removed volume holds %q", out)
	}
	rexray(t, "snapshot", "rm", "snap1")
	if _, err := rexrayErr("snapshot", "rm", "snap1"); err == nil || !strings.Contains(err.Error(), "snapshot snap1: snapshot not found") {
		t.Errorf("second snapshot rm = %v", err)
	}
	mustDocker(t, "volume", "rm", "fromsnap", "fromsnap2")
	if left, _ := os.ReadDir(filepath.Join(suite.store, "snapshots")); len(left) != 0 {
		t.Errorf("store's snapshots folder still holds %v", left)
	}
}

// testEnv: rexray env tells each setting's value and where it came from.
func testEnv(t *testing.T) {
	var settings []struct{ Name, Value, Source string }
	if err := json.Unmarshal([]byte(rexray(t, "env", "--format", "json")), &settings); err != nil {
		t.Fatal(err)
	}
	want := map[string][2]string{
		"REXRAY_STATEDIR":     {suite.state, "env"},
		"LOOPBACK_VOLUMEPATH": {suite.store, "env"},
		"REXRAY_FSTYPE":       {"ext4", "default"},
		"LIBSTORAGE_INTEGRATION_VOLUME_OPERATIONS_CREATE_DEFAULT_SIZE": {"16", "default"},
	}
	for _, s := range settings {
		if w, ok := want[s.Name]; ok {
			if s.Value != w[0] || s.Source != w[1] {
				t.Errorf("env %s = %q from %s, want %q from %s", s.Name, s.Value, s.Source, w[0], w[1])
			}
			delete(want, s.Name)
		}
	}
	for name := range want {
		t.Errorf("env does not list %s", name)
	}
}
