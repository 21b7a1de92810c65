//go:build integration

package integration

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestRBDAcrossHosts: two Docker hosts of the test cluster against one Ceph
// cluster. A volume h1 holds is refused to h2 with an error naming h1;
// with preempt h2 takes it, h1 is fenced (Ceph blocklists its client, so
// its writes no longer reach the image) and h2 holds everything h1 synced.
func TestRBDAcrossHosts(t *testing.T) {
	cephDir := filepath.Join(t.TempDir(), "ceph")
	cephUp := false
	t.Cleanup(func() { // last: after the plugins and the cluster are gone
		if cephUp {
			if _, err := suite.hack("ceph-down.sh", cephDir); err != nil {
				t.Errorf("ceph-down: %v", err)
			}
		}
	})
	c := startCluster(t, 2, "REXRAY_LOGLEVEL=info")
	// The daemons listen on the cluster's bridge, which every host reaches.
	bridge := c.hosts[0].ip[:strings.LastIndex(c.hosts[0].ip, ".")] + ".1"
	cmd := exec.Command(filepath.Join(suite.repo, "hack", "ceph-up.sh"), cephDir)
	cmd.Env = append(os.Environ(), "CEPH_ADDR="+bridge)
	cmd.Stderr = os.Stderr
	cephUp = true
	if err := cmd.Run(); err != nil {
		t.Fatalf("ceph-up on %s: %v", bridge, err)
	}
	pdir := filepath.Join(t.TempDir(), "plugin-rbd")
	mk := exec.Command("make", "-C", suite.repo, "plugin", "DRIVER=rbd", "PLUGIN_DIR="+pdir)
	mk.Env = append(os.Environ(), "DOCKER_HOST=")
	if out, err := mk.CombinedOutput(); err != nil {
		t.Fatalf("make plugin DRIVER=rbd: %v\n%s", err, out)
	}
	for k := 1; k <= 2; k++ {
		state := filepath.Join(c.dir, fmt.Sprintf("h%d", k), "rbd-state")
		if err := os.MkdirAll(state, 0o700); err != nil {
			t.Fatal(err)
		}
		c.must(t, k, "plugin", "create", rbdPlugin, pdir)
		c.must(t, k, "plugin", "set", rbdPlugin, "ceph.source="+filepath.Join(cephDir, "etc-ceph"), "state.source="+state,
			fmt.Sprintf("REXRAY_INSTANCEID=h%d", k), "RBD_LOCKCHECK=1s", "REXRAY_LOGLEVEL=info")
		c.must(t, k, "plugin", "enable", rbdPlugin)
		t.Cleanup(func() { c.docker(k, "plugin", "disable", "-f", rbdPlugin) })
	}

	c.must(t, 1, "volume", "create", "-d", rbdPlugin, "-o", "size=1", "moves")
	c.holderOn(t, 1, rbdPlugin, "writer", "moves", appender)
	waitFor(t, "h1 to sync 20 lines", 60*time.Second, func() bool {
		out, _ := c.docker(1, "logs", "writer")
		return len(syncedLine.FindAllString(out, -1)) >= 20
	})

	_, err := c.docker(2, "run", "--rm", "--volume-driver", rbdPlugin, "-v", "moves:/data", "busybox", "true")
	if err == nil || !strings.Contains(err.Error(), "h1") || !strings.Contains(err.Error(), "REXRAY_PREEMPT=true") {
		t.Fatalf("h2's mount while h1 holds the volume = %v; want an error naming h1 and how to preempt", err)
	}

	c.setPlugin(t, 2, rbdPlugin, "REXRAY_PREEMPT=true")
	start := time.Now()
	c.holderOn(t, 2, rbdPlugin, "taker", "moves", "sleep 600")
	t.Logf("h2 took the volume in %s", time.Since(start))
	waitFor(t, "h1's writes to fail", 30*time.Second, func() bool {
		out, _ := c.docker(1, "logs", "writer")
		return strings.Contains(out, "failed ")
	})
	out, _ := c.docker(1, "logs", "writer")
	synced := 0
	for _, m := range syncedLine.FindAllStringSubmatch(out, -1) {
		synced = max(synced, atoi(m[1]))
	}
	if after := out[strings.Index(out, "failed "):]; syncedLine.MatchString(after) {
		t.Errorf("h1 synced lines after its first failure:\n%s", after)
	}
	lines := strings.Split(c.must(t, 2, "exec", "taker", "cat", "/data/log"), "\n")
	for i := 1; i <= synced; i++ {
		if i > len(lines) || lines[i-1] != fmt.Sprintf("line %d", i) {
			t.Fatalf("h2 lacks line %d of the %d h1 synced", i, synced)
		}
	}
	t.Logf("h1 synced %d lines, h2 holds all of them", synced)
	c.must(t, 2, "rm", "-f", "taker")
	c.must(t, 1, "rm", "-f", "writer")
	c.must(t, 2, "volume", "rm", "moves")
	if out, _ := exec.Command("pgrep", "-f", "rbd-fuse .*-r moves").Output(); len(out) > 0 {
		t.Errorf("rbd-fuse processes left: %s", out)
	}
}
