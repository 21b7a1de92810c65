//go:build integration

package integration

import (
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// cluster is N Docker hosts on this machine (hack/cluster-up.sh): each in
// its network namespace with its dockerd and the plugin, joined in one
// Swarm, sharing one loopback store.
type cluster struct {
	dir   string
	hosts []clusterHost
}

type clusterHost struct {
	name, sock, ip, nodeID string
}

// clusterPlugin is the plugin's name on the cluster's hosts.
const clusterPlugin = "rexray/loopback:latest"

func startCluster(t *testing.T, n int, settings ...string) *cluster {
	t.Helper()
	dir, err := os.MkdirTemp("/tmp", "rxc-") // short: unix socket paths
	if err != nil {
		t.Fatal(err)
	}
	c := &cluster{dir: dir}
	t.Cleanup(func() { c.down(t) })
	cmd := exec.Command(filepath.Join(suite.repo, "hack", "cluster-up.sh"), dir, strconv.Itoa(n))
	cmd.Env = append(os.Environ(), "PLUGIN_SETTINGS="+strings.Join(settings, " "))
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("cluster-up: %v", err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		if len(f) != 4 {
			t.Fatalf("cluster-up printed %q", line)
		}
		c.hosts = append(c.hosts, clusterHost{f[0], f[1], f[2], f[3]})
	}
	return c
}

// down removes the cluster, also after a failure, and checks that nothing
// of it is left.
func (c *cluster) down(t *testing.T) {
	if t.Failed() {
		for k := range c.hosts {
			b, _ := os.ReadFile(filepath.Join(c.dir, fmt.Sprintf("h%d", k+1), "d", "dockerd.log"))
			lines := strings.Split(strings.TrimSpace(string(b)), "\n")
			t.Logf("--- h%d dockerd.log (end)\n%s", k+1, strings.Join(lines[max(0, len(lines)-40):], "\n"))
		}
	}
	if out, err := exec.Command(filepath.Join(suite.repo, "hack", "cluster-down.sh"), c.dir).CombinedOutput(); err != nil {
		t.Errorf("cluster-down: %v\n%s", err, out)
	}
	if m := mountsUnder(c.dir); len(m) > 0 {
		t.Errorf("mounts left: %v", m)
	}
	if _, err := os.Stat(c.dir); !os.IsNotExist(err) {
		t.Errorf("%s left: %v", c.dir, err)
	}
	if out, _ := exec.Command("pgrep", "-f", c.dir+"/").Output(); len(out) > 0 {
		t.Errorf("processes left: %s", out)
	}
}

// docker runs the docker CLI against host k (1-based).
func (c *cluster) docker(k int, args ...string) (string, error) {
	cmd := exec.Command("docker", args...)
	cmd.Env = append(os.Environ(), "DOCKER_HOST="+c.hosts[k-1].sock)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return strings.TrimSpace(string(out)), fmt.Errorf("%w: %s", err, strings.TrimSpace(stderr.String()))
	}
	return strings.TrimSpace(string(out)), nil
}

func (c *cluster) must(t *testing.T, k int, args ...string) string {
	t.Helper()
	out, err := c.docker(k, args...)
	if err != nil {
		t.Fatalf("h%d: docker %s: %v", k, strings.Join(args, " "), err)
	}
	return out
}

// setPlugin changes the settings of a plugin on host k (disabled, as
// Docker requires).
func (c *cluster) setPlugin(t *testing.T, k int, plugin string, kv ...string) {
	t.Helper()
	c.must(t, k, "plugin", "disable", "-f", plugin)
	c.must(t, k, append([]string{"plugin", "set", plugin}, kv...)...)
	c.must(t, k, "plugin", "enable", plugin)
}

func (c *cluster) image(vol string) string {
	return filepath.Join(c.dir, "store", "volumes", vol+".img")
}

// running finds the host and container of a service's running task.
func (c *cluster) running(service string) (int, string) {
	for k := range c.hosts {
		id, err := c.docker(k+1, "ps", "-q", "--filter", "label=com.docker.swarm.service.name="+service, "--filter", "status=running")
		if err == nil && id != "" && !strings.Contains(id, "\n") {
			return k + 1, id
		}
	}
	return 0, ""
}

// leaseTTL is the cluster's LOOPBACK_LEASETTL: short, so that the dead
// host's volume is taken over within seconds.
const leaseTTL = 4 * time.Second

// TestCluster runs the multi-host stories on 3 hosts: a Swarm task's
// volume follows it, a second host is refused while the first holds the
// volume, every host lists what the shared store holds, preemption fences
// the holder, a dead holder's volume is taken after its lease (a classic
// one, and a cluster volume once the swarm lets its task go), and one
// volume moves between random hosts under load.
func TestCluster(t *testing.T) {
	c := startCluster(t, 3, "LOOPBACK_LEASETTL="+leaseTTL.String(), "REXRAY_LOGLEVEL=info")
	t.Run("VolumeFollowsDrainedTask", func(t *testing.T) { testFollow(t, c) })
	t.Run("ClusterVolumeFollowsDrainedTask", func(t *testing.T) { testClusterFollow(t, c) })
	t.Run("RefusedWithoutPreempt", func(t *testing.T) { testRefused(t, c) })
	t.Run("ListsWhatTheStoreHolds", func(t *testing.T) { testStoreListing(t, c) })
	t.Run("PreemptFencesHolder", func(t *testing.T) { testPreempt(t, c) })
	t.Run("MovesUnderLoad", func(t *testing.T) { testMoves(t, c) })
	t.Run("GrowsWhereMounted", func(t *testing.T) { c.growsWhereMounted(t, clusterPlugin) })
	t.Run("DeadHolderAfterLease", func(t *testing.T) { testDeadHolder(t, c) })
	// Last: it removes h2 from the swarm.
	t.Run("ClusterVolumeOfDeadNode", func(t *testing.T) { testClusterVolumeOfDeadNode(t, c) })
}

// testFollow: a one-replica service counts in a file on its volume; the
// node it runs on is drained, the task starts elsewhere, reads the count
// back and goes on. Until it has run on every node.
func testFollow(t *testing.T, c *cluster) {
	defer func() {
		c.stopService(t, "counter")
		c.docker(1, "volume", "rm", "count")
	}()
	follow(t, c, "counter", "type=volume,source=count,target=/data,volume-driver="+clusterPlugin+",volume-opt=size=64MiB")
}

// testClusterFollow is testFollow with a Swarm cluster volume, which the
// swarm publishes on each node the task goes to (CSI), then drains and
// removes.
func testClusterFollow(t *testing.T, c *cluster) {
	c.must(t, 1, "volume", "create", "--driver", clusterPlugin, "--type", "mount", "--sharing", "onewriter",
		"--scope", "single", "--availability", "active", "-o", "size=64MiB", "ccount")
	waitFor(t, "the cluster volume to be created", 90*time.Second, func() bool {
		out, _ := c.docker(1, "volume", "ls", "--cluster")
		return clusterStatus(out, "ccount") == "created"
	})
	defer func() {
		c.stopService(t, "ccounter")
		c.docker(1, "volume", "update", "--availability", "drain", "ccount")
		waitFor(t, "the cluster volume to be removed", 90*time.Second, func() bool {
			c.docker(1, "volume", "rm", "ccount")
			out, _ := c.docker(1, "volume", "ls", "--cluster")
			return clusterStatus(out, "ccount") == ""
		})
		// The swarm forgets the volume, then has its plugin delete it.
		waitFor(t, "the cluster volume's image to go from the store", 30*time.Second, func() bool {
			_, err := os.Stat(c.image("ccount"))
			return os.IsNotExist(err)
		})
	}()
	follow(t, c, "ccounter", "type=cluster,src=ccount,dst=/data")
}

func (c *cluster) stopService(t *testing.T, service string) {
	c.docker(1, "service", "rm", service)
	waitFor(t, "the "+service+"'s containers to go", 60*time.Second, func() bool { k, _ := c.running(service); return k == 0 })
}

// follow runs a counting service with mount and moves its task to every
// node in turn, draining the others; each time the task must read on the
// count it left.
func follow(t *testing.T, c *cluster, service, mount string) {
	c.must(t, 1, "service", "create", "--detach", "--name", service, "--no-resolve-image",
		"--restart-delay", "1s", "--stop-grace-period", "5s", "--mount", mount,
		"busybox", "sh", "-c", `trap 'exit 0' TERM; n=$(cat /data/n 2>/dev/null || echo 0)
while true; do n=$((n+1)); echo $n > /data/n.new && mv /data/n.new /data/n && sync; sleep 0.2 & wait $!; done`)
	last, visited := 0, map[int]bool{}
	for target := 1; len(visited) < len(c.hosts); target++ {
		// Drain every node but the target: the task must go there.
		start := time.Now()
		for k := range c.hosts {
			if k+1 != target {
				c.must(t, 1, "node", "update", "--availability", "drain", c.hosts[k].nodeID)
			}
		}
		var got int
		waitFor(t, fmt.Sprintf("the task to run on h%d and count past %d", target, last), 90*time.Second, func() bool {
			k, id := c.running(service)
			if k != target {
				return false
			}
			out, err := c.docker(k, "exec", id, "cat", "/data/n")
			got, _ = strconv.Atoi(out)
			return err == nil && got > last
		})
		t.Logf("task on h%d reads %d (last seen %d elsewhere), %s after the drain", target, got, last, time.Since(start).Round(100*time.Millisecond))
		last, visited[target] = got, true
		for k := range c.hosts {
			c.must(t, 1, "node", "update", "--availability", "active", c.hosts[k].nodeID)
		}
	}
}

// holder starts a container holding vol on host k.
func (c *cluster) holder(t *testing.T, k int, name, vol, script string) {
	t.Helper()
	c.holderOn(t, k, clusterPlugin, name, vol, script)
}

// holderOn is holder for a volume of another plugin.
func (c *cluster) holderOn(t *testing.T, k int, plugin, name, vol, script string) {
	t.Helper()
	c.must(t, k, "run", "-d", "--name", name, "--volume-driver", plugin, "-v", vol+":/data", "busybox", "sh", "-c", script)
	t.Cleanup(func() { c.docker(k, "rm", "-f", name) })
}

// testRefused: without preempt, a mount on h2 of a volume h1 holds fails
// at once, naming the volume and h1 and saying how to preempt.
func testRefused(t *testing.T, c *cluster) {
	c.must(t, 1, "volume", "create", "-d", clusterPlugin, "-o", "size=64MiB", "held")
	c.holder(t, 1, "held-by-h1", "held", "sleep 600")
	start := time.Now()
	_, err := c.docker(2, "run", "--rm", "--volume-driver", clusterPlugin, "-v", "held:/data", "busybox", "true")
	took := time.Since(start)
	t.Logf("h2 refused in %s: %v", took, err)
	if err == nil {
		t.Fatal("h2 mounted a volume h1 holds")
	}
	for _, want := range []string{"volume held is attached to host h1", "REXRAY_PREEMPT=true"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("h2's error lacks %q", want)
		}
	}
	// Answered from the lease, not after waiting one out (4 s).
	if took > 3*time.Second {
		t.Errorf("h2 took %s to be refused", took)
	}
	c.must(t, 1, "rm", "-f", "held-by-h1")
	c.must(t, 1, "volume", "rm", "held")
}

// testStoreListing: what h1 creates, h2 lists and inspects; once h1
// removed it, h2's inspect fails and h2 can create the name anew.
func testStoreListing(t *testing.T, c *cluster) {
	const vol = "made-on-h1"
	c.must(t, 1, "volume", "create", "-d", clusterPlugin, "-o", "size=64MiB", vol)
	defer c.docker(2, "volume", "rm", vol)
	if names := strings.Fields(c.must(t, 2, "volume", "ls", "--format", "{{.Name}}")); !slices.Contains(names, vol) {
		t.Errorf("docker volume ls on h2 lists %v, without the volume h1 created", names)
	}
	if size := c.must(t, 2, "volume", "inspect", "--format", "{{.Status.size}}", vol); size != "0.0625" {
		t.Errorf("h2 inspects the volume h1 created as size %s GB, want 0.0625", size)
	}
	c.must(t, 1, "volume", "rm", vol)
	if names := strings.Fields(c.must(t, 2, "volume", "ls", "--format", "{{.Name}}")); slices.Contains(names, vol) {
		t.Errorf("docker volume ls on h2 still lists the volume h1 removed: %v", names)
	}
	if out, err := c.docker(2, "volume", "inspect", vol); err == nil {
		t.Errorf("docker volume inspect on h2 of the volume h1 removed succeeded:\n%s", out)
	}
	c.must(t, 2, "volume", "create", "-d", clusterPlugin, "-o", "size=128MiB", vol)
	if size := c.must(t, 1, "volume", "inspect", "--format", "{{.Status.size}}", vol); size != "0.125" {
		t.Errorf("h1 inspects the volume h2 made anew as size %s GB, want 0.125", size)
	}
}

var syncedLine = regexp.MustCompile(`(?m)^synced (\d+)$`)

// appender appends numbered lines, each fsync'd, and says which succeeded.
const appender = `i=0; while true; do i=$((i+1))
if echo "line $i" >> /data/log && sync /data/log; then echo "synced $i"; else echo "failed $i"; fi
sleep 0.05; done`

// testPreempt: h1 appends fsync'd lines; h2 mounts with preempt. From then
// on h1's writes fail, and h2 sees a clean filesystem holding every line
// h1 saw synced.
func testPreempt(t *testing.T, c *cluster) {
	c.must(t, 1, "volume", "create", "-d", clusterPlugin, "-o", "size=64MiB", "journal")
	c.appendOn(t, 1, clusterPlugin, "journal")
	c.takeOver(t, clusterPlugin, "journal")
	c.must(t, 2, "rm", "-f", "taker")
	c.must(t, 1, "rm", "-f", "writer")
	waitFor(t, "journal to be released everywhere", 20*time.Second, func() bool { return len(loopsOf(c.image("journal"))) == 0 })
	fsckImage(t, c.image("journal"))
	c.must(t, 1, "volume", "rm", "journal")
}

// appendOn starts the container "writer" on host k, appending fsync'd
// lines to vol, and waits until it has synced 20.
func (c *cluster) appendOn(t *testing.T, k int, plugin, vol string) {
	t.Helper()
	c.holderOn(t, k, plugin, "writer", vol, appender)
	waitFor(t, fmt.Sprintf("h%d to sync 20 lines", k), 60*time.Second, func() bool {
		out, _ := c.docker(k, "logs", "writer")
		return len(syncedLine.FindAllString(out, -1)) >= 20
	})
}

// takeOver has h2 preempt vol from h1's writer with a container "taker",
// and checks that h1's writes fail from then on and that h2 holds every
// line h1 saw synced.
func (c *cluster) takeOver(t *testing.T, plugin, vol string) {
	t.Helper()
	c.setPlugin(t, 2, plugin, "REXRAY_PREEMPT=true")
	defer c.setPlugin(t, 2, plugin, "REXRAY_PREEMPT=false")
	start := time.Now()
	c.holderOn(t, 2, plugin, "taker", vol, "sleep 600")
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
	// Lines synced after the first failure would mean h1 still writes.
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
}

func atoi(s string) int { n, _ := strconv.Atoi(s); return n }

func fsckImage(t *testing.T, img string) {
	t.Helper()
	if out, err := exec.Command("fsck.ext4", "-n", "-f", img).CombinedOutput(); err != nil {
		t.Errorf("fsck %s: %v\n%s", img, err, out)
	}
}

// testMoves: 20 rounds, each on a random other host with preempt, take one
// volume from the host writing to it and write to it in turn. Then: no
// corruption, no loop device or mount left, every ledger empty.
func testMoves(t *testing.T, c *cluster) {
	for k := range c.hosts {
		c.setPlugin(t, k+1, clusterPlugin, "REXRAY_PREEMPT=true")
		defer c.setPlugin(t, k+1, clusterPlugin, "REXRAY_PREEMPT=false")
	}
	c.must(t, 1, "volume", "create", "-d", clusterPlugin, "-o", "size=64MiB", "moving")
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
	at, prev := 0, ""
	for round := 1; round <= 20; round++ {
		k := 1 + rng.IntN(len(c.hosts))
		if k == at {
			k = 1 + k%len(c.hosts)
		}
		name := fmt.Sprintf("w%d", round)
		c.holder(t, k, name, "moving", fmt.Sprintf(`i=0; while true; do i=$((i+1)); echo "%s $i" >> /data/log; sync /data/log; sleep 0.02; done`, name))
		waitFor(t, name+" on h"+strconv.Itoa(k)+" to write", 20*time.Second, func() bool {
			out, _ := c.docker(k, "exec", name, "grep", "-c", name+" ", "/data/log")
			return atoi(out) >= 5
		})
		if prev != "" {
			c.must(t, at, "rm", "-f", prev)
		}
		at, prev = k, name
	}
	c.must(t, at, "rm", "-f", prev)
	waitFor(t, "moving to be released everywhere", 20*time.Second, func() bool {
		return len(loopsOf(c.image("moving"))) == 0
	})
	for _, m := range mountsUnder(c.dir) {
		if strings.Contains(m, "/moving") {
			t.Errorf("mount left: %s", m)
		}
	}
	for k := range c.hosts {
		if mp := c.must(t, k+1, "volume", "inspect", "--format", "{{.Mountpoint}}", "moving"); mp != "" {
			t.Errorf("h%d's ledger still holds moving (mountpoint %s)", k+1, mp)
		}
	}
	fsckImage(t, c.image("moving"))
	c.must(t, 1, "volume", "rm", "moving")
}

// testDeadHolder: h3 holds a volume and dies hard; h2 mounts it once h3's
// lease has run out, without preempt, with the data h3 synced.
func testDeadHolder(t *testing.T, c *cluster) {
	c.must(t, 3, "volume", "create", "-d", clusterPlugin, "-o", "size=64MiB", "orphan")
	c.must(t, 3, "run", "-d", "--name", "dying", "-v", "orphan:/data", "busybox", "sh", "-c", "echo before-the-crash > /data/f && sync /data/f && sleep 600")
	waitFor(t, "h3 to write", 20*time.Second, func() bool {
		out, _ := c.docker(3, "exec", "dying", "cat", "/data/f")
		return out == "before-the-crash"
	})
	if out, err := exec.Command(filepath.Join(suite.repo, "hack", "cluster-crash.sh"), c.dir, "3").CombinedOutput(); err != nil {
		t.Fatalf("cluster-crash: %v\n%s", err, out)
	}
	crashed := time.Now()
	var got string
	waitFor(t, "h2 to mount the dead host's volume", 4*leaseTTL, func() bool {
		out, err := c.docker(2, "run", "--rm", "--volume-driver", clusterPlugin, "-v", "orphan:/data", "busybox", "cat", "/data/f")
		got = out
		return err == nil
	})
	t.Logf("h2 mounted it %s after h3 died (lease %s)", time.Since(crashed).Round(100*time.Millisecond), leaseTTL)
	if got != "before-the-crash" {
		t.Errorf("h2 reads %q", got)
	}
	if loops := loopsOf(c.image("orphan")); len(loops) > 0 {
		t.Errorf("loop devices left on the dead host's volume: %v", loops)
	}
	c.must(t, 2, "volume", "rm", "orphan")
}

// growsWhereMounted: a container on h1 uses an xfs volume; the operator
// CLI on h2 grows it. df in h1's container shows the new size, without a
// restart, the data stays, and h2's Status size follows.
func (c *cluster) growsWhereMounted(t *testing.T, plugin string) {
	const vol = "grown-on-h2"
	c.must(t, 1, "volume", "create", "-d", plugin, "-o", "size=320MiB", "-o", "fstype=xfs", vol)
	defer c.docker(1, "volume", "rm", vol)
	c.holderOn(t, 1, plugin, "grower", vol, "echo kept > /data/f; sleep 600")
	df := func() int64 {
		out, _ := c.docker(1, "exec", "grower", "sh", "-c", "df -k /data | tail -n 1")
		f := strings.Fields(out)
		if len(f) < 2 {
			return 0
		}
		n, _ := strconv.ParseInt(f[1], 10, 64)
		return n
	}
	waitFor(t, "the container on h1", 30*time.Second, func() bool { return df() > 0 })
	before := df()
	start := time.Now()
	if out, err := c.rexrayOn(2, plugin, nil, "volume", "resize", vol, "1GiB"); err != nil {
		t.Fatalf("rexray volume resize on h2: %v\n%s", err, out)
	}
	waitFor(t, "df in h1's container to show about 1 GiB", 30*time.Second, func() bool { return df() > 900<<10 })
	t.Logf("df on h1: %d KiB before, %d KiB %s after h2's resize", before, df(), time.Since(start).Round(time.Millisecond))
	if before > 320<<10 {
		t.Errorf("df on h1 before the resize: %d KiB, want at most 320 MiB", before)
	}
	if out, _ := c.docker(1, "exec", "grower", "cat", "/data/f"); out != "kept" {
		t.Errorf("data on h1 after the resize: %q", out)
	}
	c.must(t, 1, "exec", "grower", "dd", "if=/dev/zero", "of=/data/big", "bs=1M", "count=500")
	if size := c.must(t, 2, "volume", "inspect", "--format", "{{.Status.size}}", vol); size != "1" {
		t.Errorf("h2 inspects the grown volume as size %s GB, want 1", size)
	}
	c.must(t, 1, "rm", "-f", "grower")
}
