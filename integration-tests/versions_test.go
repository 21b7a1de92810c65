//go:build integration

package integration

import (
	"strings"
	"testing"

	"github.com/docker/docker/api/types/volume"
)

// engineAPI is the API each engine speaks, as `docker version` shows it.
var engineAPI = map[string]string{"20.10": "1.41", "26.1": "1.45", "28.5": "1.51"}

// TestEngine: where the engines differ, what a user of each sees, and that
// rexray's volumes come through every difference.
func TestEngine(t *testing.T) {
	ensurePlugin(t)
	t.Run("APINegotiation", testAPINegotiation)
	t.Run("VolumePrune", testVolumePrune)
	t.Run("ClusterVolumeFlags", testClusterVolumeFlags)
}

// testAPINegotiation: the Go client (WithAPIVersionNegotiation, as rexray's
// tools use it) speaks each engine's own API, newer or older than itself.
func testAPINegotiation(t *testing.T) {
	if suite.info.api != engineAPI[suite.engine] {
		t.Errorf("Docker %s (dockerd %s) speaks API %s, want %s", suite.engine, suite.info.version, suite.info.api, engineAPI[suite.engine])
	}
	if _, err := suite.cli.VolumeList(ctx(t), volume.ListOptions{}); err != nil {
		t.Errorf("volume list: %v", err)
	}
	if got := suite.cli.ClientVersion(); got != suite.info.api {
		t.Errorf("the client negotiated API %s with Docker %s, want %s", got, suite.engine, suite.info.api)
	}
}

// testVolumePrune: plugin volumes are never pruned. What prune takes of
// local volumes differs: 20.10 takes every unused one and has no --all;
// from API 1.42 on, plain prune takes anonymous ones only and --all the
// named ones too.
func testVolumePrune(t *testing.T) {
	mustDocker(t, "volume", "create", "-d", plugin, "-o", "size=64MiB", "pruneme")
	defer suite.docker("volume", "rm", "pruneme")
	mustDocker(t, "run", "--rm", "-v", "pruneme:/data", "busybox", "sh", "-c", "echo kept > /data/f")
	mustDocker(t, "volume", "create", "localnamed")
	defer suite.docker("volume", "rm", "localnamed")
	exists := func(name string) bool { _, err := suite.docker("volume", "inspect", name); return err == nil }

	mustDocker(t, "volume", "prune", "-f")
	if old := suite.engine == "20.10"; exists("localnamed") == old {
		t.Errorf("Docker %s: after volume prune, local named volume exists=%v", suite.engine, !old)
	}
	out, err := suite.docker("volume", "prune", "-a", "-f")
	switch {
	case suite.engine == "20.10" && err == nil:
		t.Errorf("Docker 20.10 took volume prune -a: %s", out)
	case suite.engine != "20.10" && err != nil:
		t.Errorf("Docker %s: volume prune -a: %v", suite.engine, err)
	case suite.engine != "20.10" && exists("localnamed"):
		t.Errorf("Docker %s: volume prune -a kept the unused local volume", suite.engine)
	}
	if got := mustDocker(t, "run", "--rm", "-v", "pruneme:/data", "busybox", "cat", "/data/f"); got != "kept" {
		t.Errorf("the rexray volume holds %q after the prunes, want kept", got)
	}
}

// testClusterVolumeFlags: 20.10 refuses the cluster volume flags for its
// API; newer engines take them and ask for a Swarm manager.
func testClusterVolumeFlags(t *testing.T) {
	if state := mustDocker(t, "info", "--format", "{{.Swarm.LocalNodeState}}"); state != "inactive" {
		t.Fatalf("the suite's engine is in a swarm (%s): a cluster volume would be made", state)
	}
	_, err := suite.docker("volume", "create", "-d", plugin, "--type", "mount", "--sharing", "onewriter", "clustervol")
	want := "not a swarm manager"
	if suite.engine == "20.10" {
		want = "1.42" // the CLI names the API the flags need; Debian 12's CLI has no such flags
		if err != nil && strings.Contains(err.Error(), "unknown flag") {
			want = "unknown flag"
		}
	}
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("Docker %s: cluster volume create = %v, want an error saying %q", suite.engine, err, want)
	}
	if _, err := suite.docker("volume", "inspect", "clustervol"); err == nil {
		t.Errorf("Docker %s: the refused cluster volume exists", suite.engine)
		suite.docker("volume", "rm", "clustervol")
	}
}
