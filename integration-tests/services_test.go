//go:build integration

package integration

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

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
