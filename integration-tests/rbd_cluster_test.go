//go:build integration

package integration

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
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
	c.appendOn(t, 1, rbdPlugin, "moves")
	_, err := c.docker(2, "run", "--rm", "--volume-driver", rbdPlugin, "-v", "moves:/data", "busybox", "true")
	if err == nil || !strings.Contains(err.Error(), "h1") || !strings.Contains(err.Error(), "REXRAY_PREEMPT=true") {
		t.Fatalf("h2's mount while h1 holds the volume = %v; want an error naming h1 and how to preempt", err)
	}
	c.takeOver(t, rbdPlugin, "moves")
	c.must(t, 2, "rm", "-f", "taker")
	c.must(t, 1, "rm", "-f", "writer")
	c.must(t, 2, "volume", "rm", "moves")
	if out, _ := exec.Command("pgrep", "-f", "rbd-fuse .*-r moves").Output(); len(out) > 0 {
		t.Errorf("rbd-fuse processes left: %s", out)
	}
	waitFor(t, "no loop device left over the image", 10*time.Second, func() bool {
		files, _ := filepath.Glob("/sys/block/loop*/loop/backing_file")
		for _, f := range files {
			if b, err := os.ReadFile(f); err == nil && strings.HasSuffix(strings.TrimSpace(string(b)), "/moves") {
				return false
			}
		}
		return true
	})

	t.Run("ListsWhatTheOtherMade", func(t *testing.T) {
		c.must(t, 1, "volume", "create", "-d", rbdPlugin, "-o", "size=1", "listed")
		defer c.docker(1, "volume", "rm", "listed")
		if names := strings.Fields(c.must(t, 2, "volume", "ls", "--format", "{{.Name}}")); !slices.Contains(names, "listed") {
			t.Errorf("docker volume ls on h2 lists %v, without the volume h1 created", names)
		}
	})
	t.Run("CreatesAtOnce", func(t *testing.T) { testRBDCreatesAtOnce(t, c) })
	t.Run("GrowsWhereMounted", func(t *testing.T) { c.growsWhereMounted(t, rbdPlugin) })
}

// testRBDCreatesAtOnce: h1 and h2 create one name at the same moment. With
// the same options both succeed, one volume; with other sizes one succeeds
// and the other is told the volume exists and differs.
func testRBDCreatesAtOnce(t *testing.T, c *cluster) {
	at := func(name string, opts ...[]string) []error {
		errs := make([]error, len(opts))
		start := make(chan struct{})
		var wg sync.WaitGroup
		for k, o := range opts {
			wg.Go(func() {
				args := []string{"volume", "create", "-d", rbdPlugin}
				for _, kv := range o {
					args = append(args, "-o", kv)
				}
				<-start
				_, errs[k] = c.docker(k+1, append(args, name)...)
			})
		}
		close(start)
		wg.Wait()
		return errs
	}
	rm := func(name string) {
		c.docker(1, "volume", "rm", name)
		c.docker(2, "volume", "rm", name)
	}
	for round := range 3 {
		name := fmt.Sprintf("same%d", round)
		for k, err := range at(name, []string{"size=1", "fsType=ext4"}, []string{"size=1", "fsType=ext4"}) {
			if err != nil {
				t.Errorf("%s: h%d: %v", name, k+1, err)
			}
		}
		rm(name)
		name = fmt.Sprintf("differ%d", round)
		errs := at(name, []string{"size=1"}, []string{"size=2"})
		failed := 0
		for k, err := range errs {
			if err == nil {
				continue
			}
			failed++
			if !strings.Contains(err.Error(), "exists and differs") {
				t.Errorf("%s: h%d was told %v, want that the volume exists and differs", name, k+1, err)
			}
		}
		if failed != 1 {
			t.Errorf("%s: %d of 2 creates failed (%v), want exactly one", name, failed, errs)
		}
		rm(name)
	}
}
