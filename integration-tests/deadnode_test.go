//go:build integration

package integration

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// testClusterVolumeOfDeadNode: h2 runs a counting task on a cluster
// volume and dies hard. The swarm keeps the dead node's task (and the
// volume with it) until the node is removed; once it is, the task runs on
// h1 with the count h2 synced: h1's plugin takes the dead host's lease
// over when it runs out. The swarm then never unpublishes the volume from
// the removed node, so removing it takes `docker volume rm --force` (the
// swarm forgets it) and `rexray volume rm` (the store lets it go).
func testClusterVolumeOfDeadNode(t *testing.T, c *cluster) {
	const vol, service = "survivor", "survivor-counter"
	c.must(t, 1, "volume", "create", "--driver", clusterPlugin, "--type", "mount", "--sharing", "onewriter",
		"--scope", "single", "--availability", "active", "-o", "size=64MiB", vol)
	waitFor(t, "the cluster volume to be created", 90*time.Second, func() bool {
		out, _ := c.docker(1, "volume", "ls", "--cluster")
		return clusterStatus(out, vol) == "created"
	})
	defer func() {
		c.docker(1, "service", "rm", service)
		c.docker(1, "volume", "rm", "--force", vol)
		c.rexray(1, "volume", "rm", vol)
	}()
	for _, k := range []int{1, 3} {
		c.must(t, 1, "node", "update", "--availability", "drain", c.hosts[k-1].nodeID)
	}
	c.must(t, 1, "service", "create", "--detach", "--name", service, "--no-resolve-image",
		"--restart-delay", "1s", "--mount", "type=cluster,src="+vol+",dst=/data",
		"busybox", "sh", "-c", `n=$(cat /data/n 2>/dev/null || echo 0)
while true; do n=$((n+1)); echo $n > /data/n.new && mv /data/n.new /data/n && sync; sleep 0.2; done`)
	before := c.countOn(t, service, 2, 4)
	c.must(t, 1, "node", "update", "--availability", "active", c.hosts[0].nodeID)
	if out, err := exec.Command(filepath.Join(suite.repo, "hack", "cluster-crash.sh"), c.dir, "2").CombinedOutput(); err != nil {
		t.Fatalf("cluster-crash: %v\n%s", err, out)
	}
	crashed := time.Now()
	waitFor(t, "the swarm to see h2 down", 60*time.Second, func() bool {
		out, _ := c.docker(1, "node", "inspect", "--format", "{{.Status.State}}", c.hosts[1].nodeID)
		return out == "down"
	})
	t.Logf("h2 down %s after the crash", time.Since(crashed).Round(100*time.Millisecond))
	c.must(t, 1, "node", "rm", "--force", c.hosts[1].nodeID)
	removed := time.Now()
	after := c.countOn(t, service, 1, before)
	t.Logf("task on h1 reads %d (h2 had counted to at least %d) %s after h2 was removed (lease %s)",
		after, before, time.Since(removed).Round(100*time.Millisecond), leaseTTL)

	c.must(t, 1, "service", "rm", service)
	waitFor(t, "h1 to unpublish the volume", 60*time.Second, func() bool {
		out, _ := c.docker(1, "volume", "inspect", "--format", "{{range .ClusterVolume.PublishStatus}}{{.NodeID}} {{.State}};{{end}}", vol)
		return !strings.Contains(out, c.hosts[0].nodeID)
	})
	// The removed node's publication stays pending: the swarm refuses
	// a plain remove for good.
	if _, err := c.docker(1, "volume", "rm", vol); err == nil {
		t.Log("the swarm removed the volume of a removed node without --force")
	}
	c.must(t, 1, "volume", "rm", "--force", vol)
	if out, _ := c.docker(1, "volume", "ls", "--cluster"); clusterStatus(out, vol) != "" {
		t.Errorf("the swarm still lists %s after a forced remove:\n%s", vol, out)
	}
	if _, err := os.Stat(c.image(vol)); err != nil {
		t.Fatalf("a forced remove took the image along, so rexray volume rm is not needed: %v", err)
	}
	if out, err := c.rexray(1, "volume", "rm", vol); err != nil {
		t.Fatalf("rexray volume rm %s: %v\n%s", vol, err, out)
	}
	if _, err := os.Stat(c.image(vol)); !os.IsNotExist(err) {
		t.Errorf("the image is still in the store after rexray volume rm: %v", err)
	}
	if loops := loopsOf(c.image(vol)); len(loops) > 0 {
		t.Errorf("loop devices left on the volume: %v", loops)
	}
}

// countOn waits for service's task to run on host k with a count in
// /data/n above floor, and returns the count.
func (c *cluster) countOn(t *testing.T, service string, k, floor int) int {
	t.Helper()
	var n int
	waitFor(t, fmt.Sprintf("the task to count past %d on h%d", floor, k), 90*time.Second, func() bool {
		host, id := c.running(service)
		if host != k {
			return false
		}
		out, _ := c.docker(k, "exec", id, "cat", "/data/n")
		n = atoi(out)
		return n > floor
	})
	return n
}

// rexray runs the operator CLI against host k's plugin.
func (c *cluster) rexray(k int, args ...string) (string, error) {
	return c.rexrayOn(k, clusterPlugin, []string{
		"REXRAY_STATEDIR=" + filepath.Join(c.dir, "h"+strconv.Itoa(k), "state"),
		"LOOPBACK_VOLUMEPATH=" + filepath.Join(c.dir, "store"),
	}, args...)
}

// rexrayOn runs the operator CLI, with env, against host k's plugin.
func (c *cluster) rexrayOn(k int, plugin string, env []string, args ...string) (string, error) {
	id, err := c.docker(k, "plugin", "inspect", "--format", "{{.Id}}", plugin)
	if err != nil {
		return "", err
	}
	return runRexray(id, env, args...)
}
