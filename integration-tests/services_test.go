//go:build integration

package integration

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// hostPlugin is rexray run on the host (host mode) with its own folders,
// reached by dockerd through a socket in /run/docker/plugins. The socket
// has its own name: that folder is the whole host's, and a real
// rexray.sock may be there.
type hostPlugin struct {
	name string // the driver name Docker uses: the socket's base name
	dir  string
	env  []string // its settings
	cmd  *exec.Cmd
}

// rexray runs the operator CLI with the host plugin's settings.
func (h *hostPlugin) rexray(args ...string) (string, error) {
	cmd := exec.Command(filepath.Join(suite.repo, "bin", "rexray"), args...)
	cmd.Env = append(os.Environ(), h.env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("rexray %s: %w: %s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

func startHostPlugin(t *testing.T, name string, env ...string) *hostPlugin {
	t.Helper()
	h := &hostPlugin{name: fmt.Sprintf("%s-%d", name, os.Getpid()), dir: t.TempDir()}
	sock := filepath.Join("/run/docker/plugins", h.name+".sock")
	h.env = append([]string{
		"REXRAY_HOST=unix://" + sock,
		"REXRAY_STATEDIR=" + filepath.Join(h.dir, "state"),
		"LOOPBACK_VOLUMEPATH=" + filepath.Join(h.dir, "store"),
		"LIBSTORAGE_INTEGRATION_VOLUME_OPERATIONS_MOUNT_PATH=" + filepath.Join(h.dir, "mnt"),
		"REXRAY_LOGLEVEL=info",
	}, env...)
	h.cmd = exec.Command(filepath.Join(suite.repo, "bin", "rexray"), "serve")
	h.cmd.Env = append(os.Environ(), h.env...)
	log, err := os.Create(filepath.Join(h.dir, "rexray.log"))
	if err != nil {
		t.Fatal(err)
	}
	h.cmd.Stdout, h.cmd.Stderr = log, log
	if err := h.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.stop(t, sock) })
	waitFor(t, "the host plugin's socket", 10*time.Second, func() bool {
		_, err := os.Stat(sock)
		return err == nil
	})
	return h
}

// stop ends the process this test started, by its PID, then releases
// whatever a failure left under its folder.
func (h *hostPlugin) stop(t *testing.T, sock string) {
	h.cmd.Process.Signal(syscall.SIGTERM)
	h.cmd.Wait()
	os.Remove(sock)
	if t.Failed() {
		if b, err := os.ReadFile(filepath.Join(h.dir, "rexray.log")); err == nil {
			t.Logf("host plugin log:\n%s", b)
		}
	}
	for _, m := range mountsUnder(h.dir) {
		syscallUnmount(m)
	}
	for _, dev := range loopsUnder(h.dir) {
		exec.Command("losetup", "-d", dev).Run()
	}
}

func syscallUnmount(path string) { syscall.Unmount(path, syscall.MNT_DETACH) }

// TestServices: one endpoint, two loopback stores; names unique across them.
func TestServices(t *testing.T) {
	h := startHostPlugin(t, "rexray-svc", "REXRAY_SERVICES=fast,bulk")
	fast, bulk := filepath.Join(h.dir, "store", "fast"), filepath.Join(h.dir, "store", "bulk")
	mustDocker(t, "volume", "create", "-d", h.name, "-o", "size=64MiB", "-o", "service=bulk", "archive")
	mustDocker(t, "volume", "create", "-d", h.name, "-o", "size=64MiB", "scratch")
	if _, err := os.Stat(filepath.Join(bulk, "volumes", "archive.img")); err != nil {
		t.Errorf("archive is not in the bulk store: %v", err)
	}
	if _, err := os.Stat(filepath.Join(fast, "volumes", "scratch.img")); err != nil {
		t.Errorf("scratch is not in the default (fast) store: %v", err)
	}
	// dockerd answers a create of a name it knows by itself; the operator
	// CLI asks the plugin.
	_, err := h.rexray("volume", "create", "archive", "-o", "service=fast")
	if err == nil || !strings.Contains(err.Error(), "taken in service bulk") {
		t.Errorf("archive again in fast = %v, want an error naming service bulk", err)
	}
	for vol, svc := range map[string]string{"archive": "bulk", "scratch": "fast"} {
		if out := mustDocker(t, "volume", "inspect", "--format", "{{.Status.service}}", vol); out != svc {
			t.Errorf("%s: Status service %q, want %s", vol, out, svc)
		}
	}
	out := mustDocker(t, "volume", "ls", "--filter", "driver="+h.name, "--format", "{{.Name}}")
	if out != "archive\nscratch" {
		t.Errorf("volume ls = %q, want archive and scratch once each", out)
	}
	mustDocker(t, "run", "--rm", "-v", "archive:/data", "busybox", "sh", "-c", "echo kept > /data/f")
	if out := mustDocker(t, "run", "--rm", "-v", "archive:/data", "busybox", "cat", "/data/f"); out != "kept" {
		t.Errorf("archive holds %q", out)
	}
	mustDocker(t, "volume", "rm", "archive", "scratch")
	if left := loopsUnder(h.dir); len(left) > 0 {
		t.Errorf("loop devices left: %v", left)
	}
}
