//go:build integration

package integration

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// hostPlugin is rexray run on the host (host mode) with its own folders.
// By default dockerd reaches it through a socket in /run/docker/plugins
// with its own name: that folder is the whole host's, and a real
// rexray.sock may be there.
type hostPlugin struct {
	name string // the driver name Docker uses
	dir  string
	env  []string // its settings
	cmd  *exec.Cmd
	sock string // "" when it listens on TCP
}

func startHostPlugin(t *testing.T, name string, env ...string) *hostPlugin {
	t.Helper()
	h := &hostPlugin{name: fmt.Sprintf("%s-%d", name, os.Getpid()), dir: t.TempDir()}
	h.sock = filepath.Join("/run/docker/plugins", h.name+".sock")
	h.env = append([]string{
		"REXRAY_HOST=unix://" + h.sock,
		"REXRAY_STATEDIR=" + filepath.Join(h.dir, "state"),
		"LOOPBACK_VOLUMEPATH=" + filepath.Join(h.dir, "store"),
		"LIBSTORAGE_INTEGRATION_VOLUME_OPERATIONS_MOUNT_PATH=" + filepath.Join(h.dir, "mnt"),
		"REXRAY_LOGLEVEL=info",
	}, env...)
	for _, kv := range env {
		if strings.HasPrefix(kv, "REXRAY_HOST=tcp://") {
			h.sock = ""
		}
	}
	h.cmd = h.command("serve")
	log, err := os.Create(h.logPath())
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	h.cmd.Stdout, h.cmd.Stderr = log, log
	if err := h.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.stop(t) })
	waitFor(t, "the host plugin to listen", 10*time.Second, func() bool {
		return strings.Contains(h.log(), " serving ")
	})
	return h
}

// command is rexray with the host plugin's settings (later ones win).
func (h *hostPlugin) command(args ...string) *exec.Cmd {
	cmd := exec.Command(filepath.Join(suite.repo, "bin", "rexray"), args...)
	cmd.Env = append(os.Environ(), h.env...)
	return cmd
}

// rexray runs the operator CLI with the host plugin's settings.
func (h *hostPlugin) rexray(args ...string) (string, error) {
	out, err := h.command(args...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("rexray %s: %w: %s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

func (h *hostPlugin) logPath() string { return filepath.Join(h.dir, "rexray.log") }

func (h *hostPlugin) log() string {
	b, _ := os.ReadFile(h.logPath())
	return string(b)
}

// stop ends the process this test started, by its PID, then releases
// whatever a failure left under its folder.
func (h *hostPlugin) stop(t *testing.T) {
	h.cmd.Process.Signal(syscall.SIGTERM)
	h.cmd.Wait()
	if h.sock != "" {
		os.Remove(h.sock)
	}
	if t.Failed() {
		t.Logf("host plugin log:\n%s", h.log())
	}
	for _, m := range mountsUnder(h.dir) {
		unix.Unmount(m, unix.MNT_DETACH)
	}
	for _, dev := range loopsUnder(h.dir) {
		exec.Command("losetup", "-d", dev).Run()
	}
	forgetLegacyDrivers(t)
}

// forgetLegacyDrivers restarts the suite's dockerd: it keeps a legacy
// (socket or spec file) driver it has used or listed until it restarts,
// and once that driver is gone every docker volume ls spends 15 s
// retrying it.
func forgetLegacyDrivers(t *testing.T) {
	enabled, _ := suite.docker("plugin", "inspect", "--format", "{{.Enabled}}", plugin)
	stopDockerd(t)
	startDockerd(t, "")
	if enabled == "true" { // the suite's managed plugin, when a test installed it
		waitFor(t, "the plugin to be enabled again", 60*time.Second, func() bool {
			out, _ := suite.docker("plugin", "inspect", "--format", "{{.Enabled}}", plugin)
			return out == "true"
		})
	}
}

// useVolume is the user's path through Docker on a driver: create, write
// in one container, read in another, inspect, remove.
func useVolume(t *testing.T, driver, vol string) {
	t.Helper()
	mustDocker(t, "volume", "create", "-d", driver, "-o", "size=64MiB", vol)
	mustDocker(t, "run", "--rm", "-v", vol+":/data", "busybox", "sh", "-c", "echo through-"+driver+" > /data/f")
	if out := mustDocker(t, "run", "--rm", "-v", vol+":/data", "busybox", "cat", "/data/f"); out != "through-"+driver {
		t.Errorf("%s holds %q", vol, out)
	}
	if out := mustDocker(t, "volume", "inspect", "--format", "{{.Driver}} {{.Scope}} {{.Status.service}} {{.Status.fields.fsType}}", vol); out != driver+" global loopback ext4" {
		t.Errorf("inspect %s: %q", vol, out)
	}
	mustDocker(t, "volume", "rm", vol)
}

// TestHostMode: the binary as a daemon on the host, found by dockerd
// through its socket; mounts happen in the host's namespace under the
// mount path it was given.
func TestHostMode(t *testing.T) {
	h := startHostPlugin(t, "rexray-host")
	mustDocker(t, "volume", "create", "-d", h.name, "-o", "size=64MiB", "hostvol")
	mustDocker(t, "run", "-d", "--name", "hostc", "-v", "hostvol:/data", "busybox", "sh", "-c", "echo from-host-mode > /data/f; sleep 600")
	defer suite.docker("rm", "-f", "hostc")
	mnt := filepath.Join(h.dir, "mnt", "hostvol")
	waitFor(t, "the container's write to show on the host", 20*time.Second, func() bool {
		b, _ := os.ReadFile(filepath.Join(mnt, "data", "f"))
		return string(b) == "from-host-mode\n"
	})
	if mps := mountsUnder(h.dir); len(mps) != 1 || mps[0] != mnt {
		t.Errorf("host mounts under the plugin's folder: %v, want %s", mps, mnt)
	}
	mustDocker(t, "rm", "-f", "hostc")
	useVolume(t, h.name, "hostvol")
	if mps, loops := mountsUnder(h.dir), loopsUnder(h.dir); len(mps)+len(loops) > 0 {
		t.Errorf("left behind: mounts %v, loop devices %v", mps, loops)
	}
}

// The systemd unit in the repository is what host mode's README installs;
// systemd-analyze checks it, pointed at the binary the tests built.
func TestSystemdUnit(t *testing.T) {
	unit, err := os.ReadFile(filepath.Join(suite.repo, "contrib", "systemd", "rexray.service"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"ExecStart=/usr/bin/rexray serve", "Before=docker.service", "EnvironmentFile=-/etc/rexray/rexray.env"} {
		if !bytes.Contains(unit, []byte(want)) {
			t.Errorf("rexray.service lacks %q", want)
		}
	}
	here := bytes.ReplaceAll(unit, []byte("/usr/bin/rexray"), []byte(filepath.Join(suite.repo, "bin", "rexray")))
	path := filepath.Join(t.TempDir(), "rexray.service")
	if err := os.WriteFile(path, here, 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("systemd-analyze", "verify", path).CombinedOutput(); err != nil {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}
