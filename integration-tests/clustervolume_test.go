//go:build integration

package integration

import (
	"slices"
	"strings"
	"testing"
	"time"
)

// testClusterVolume: a Swarm cluster volume through the same installed
// plugin as the classic volumes: created by the swarm's CSI controller,
// published to the task's node, written by the task, then drained and
// removed with nothing left behind. The plugin is enabled after the node
// joined, so the swarm's node description never carries its CSI node ID
// (swarmkit takes it at registration): rexray must not need it.
func testClusterVolume(t *testing.T) {
	// -f: earlier steps' volumes keep references to the plugin.
	mustDocker(t, "plugin", "disable", "-f", plugin)
	enabled := false
	defer func() {
		if !enabled {
			suite.docker("plugin", "enable", plugin)
		}
	}()
	mustDocker(t, "swarm", "init", "--advertise-addr", "127.0.0.1")
	defer suite.docker("swarm", "leave", "--force")
	mustDocker(t, "plugin", "enable", plugin)
	enabled = true
	mustDocker(t, "volume", "create", "--driver", plugin, "--type", "mount", "--sharing", "onewriter",
		"--scope", "single", "--availability", "active", "-o", "size=1", "cv")
	// "pending creation" until the swarm's CSI CreateVolume succeeds; the
	// node's CSI registration may come a little later than the swarm.
	// docker volume inspect cv finds the classic side of the same volume
	// (the plugin lists it too); ls --cluster asks the swarm (and ignores
	// --format).
	var status, last string
	waitFor(t, "the cluster volume to be created", 90*time.Second, func() bool {
		var err error
		status, err = suite.docker("volume", "ls", "--cluster")
		if err != nil {
			status = err.Error()
		}
		if status != last {
			t.Logf("docker volume ls --cluster: %s", status)
			last = status
		}
		return clusterStatus(status, "cv") == "created"
	})
	if files := storeFiles(t); !slices.Contains(files, "cv.img") {
		t.Fatalf("the store holds %v, want the cluster volume's image cv.img", files)
	}

	mustDocker(t, "service", "create", "--detach", "--name", "cvs", "--no-resolve-image",
		"--restart-condition", "none", "--mount", "type=cluster,src=cv,dst=/data",
		"busybox", "sh", "-c", "echo from-cluster > /data/f && sleep 600")
	var ctr string
	waitFor(t, "the task to run with its volume", 120*time.Second, func() bool {
		ctr, _ = suite.docker("ps", "-q", "--filter", "label=com.docker.swarm.service.name=cvs")
		if ctr == "" {
			return false
		}
		out, _ := suite.docker("exec", ctr, "cat", "/data/f")
		return out == "from-cluster"
	})
	if out := mustDocker(t, "exec", ctr, "sh", "-c", "grep ' /data ' /proc/mounts"); !strings.Contains(out, "ext4") {
		t.Errorf("the task's /data is %q, want the volume's ext4", out)
	}
	attached(t, "cv")

	mustDocker(t, "service", "rm", "cvs")
	waitFor(t, "the task's container to go", 60*time.Second, func() bool {
		out, _ := suite.docker("ps", "-aq", "--filter", "label=com.docker.swarm.service.name=cvs")
		return out == ""
	})
	mustDocker(t, "volume", "update", "--availability", "drain", "cv")
	waitFor(t, "the cluster volume to be removed", 90*time.Second, func() bool {
		suite.docker("volume", "rm", "cv")
		out, _ := suite.docker("volume", "ls", "--cluster")
		return clusterStatus(out, "cv") == ""
	})
	waitFor(t, "the image to go from the store", 30*time.Second, func() bool {
		return !slices.Contains(storeFiles(t), "cv.img")
	})
	released(t, "cv")
	for _, m := range mountsUnder(suite.dir) {
		if strings.Contains(m, "propagated-mount/published/") {
			t.Errorf("a publication is still mounted: %s", m)
		}
	}
}

// clusterStatus is the STATUS column of a volume's row in `docker volume ls
// --cluster` (which ignores --format), "" if it has no row.
func clusterStatus(table, name string) string {
	lines := strings.Split(table, "\n")
	col := strings.Index(lines[0], "STATUS")
	for _, line := range lines[1:] {
		if f := strings.Fields(line); len(f) > 0 && f[0] == name && col >= 0 && len(line) > col {
			return strings.TrimSpace(line[col:])
		}
	}
	return ""
}
