//go:build integration

package integration

import (
	"archive/tar"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/volume"
)

// TestPlugin walks a user's path in order: install, then use. Each step is a
// subtest; the install must pass for the rest to mean anything.
func TestPlugin(t *testing.T) {
	if !t.Run("InstallFromRegistry", testInstall) {
		t.Fatal("plugin not installed; later steps would only repeat that")
	}
	t.Run("CreateInspectWriteRead", testCreateWriteRead)
	t.Run("SharedByTwoContainers", testShared)
	t.Run("DisableEnableKeepsMounts", testDisableEnable)
	t.Run("RemoveInUseAndRemoveDisable", testRemove)
	t.Run("BadInputLeavesNothing", testBadInput)
	t.Run("EncryptedNeedsDMCrypt", testEncryptedNeedsDMCrypt)
	t.Run("XFSAndOverwriteFS", testXFS)
	t.Run("CopyOfAVolumeInUse", testCopy)
	t.Run("SnapshotsThroughTheCLI", testSnapshotsAndCLI)
	t.Run("Env", testEnv)
	t.Run("DvdcliOnTheManagedPlugin", testDvdcliManaged)
	t.Run("SwarmService", testSwarm)
	t.Run("ClusterVolume", testClusterVolume)
	t.Run("SecondPluginOnSameLedgerFails", testLedgerInUse)
	t.Run("InstallWhereSourcesDoNotExistYet", testMissingSources)
	t.Run("Compose", testCompose)
	t.Run("ShapedVolumes", testShape)
	t.Run("NothingLeftBehind", testNothingLeft)
	t.Run("DockerfileBuildsWithoutPull", testDockerfile)
}

// testInstall: install from the registry, then `docker plugin set` an env
// and the store source, as the README tells users. --disable: enabled with
// the default sources it would share /var/lib/rexray/state with any rexray
// already on this host, and refuse to start.
func testInstall(t *testing.T) {
	ref := suite.registry + "/rexray/loopback:test"
	mustDocker(t, "plugin", "install", "--grant-all-permissions", "--disable", "--alias", plugin, ref)
	mustDocker(t, "plugin", "set", plugin,
		"store.source="+suite.store, "state.source="+suite.state, "keys.source="+suite.keys, "REXRAY_LOGLEVEL=info")
	mustDocker(t, "plugin", "enable", plugin)
	out := mustDocker(t, "plugin", "inspect", "--format", "{{.Enabled}} {{.Config.Interface.Socket}}", plugin)
	if out != "true rexray.sock" {
		t.Fatalf("plugin inspect: %q, want enabled with rexray.sock", out)
	}
	// Whoever reaches the socket can mount any volume: root only.
	id := mustDocker(t, "plugin", "inspect", "--format", "{{.Id}}", plugin)
	st, err := os.Stat(filepath.Join("/run/docker/plugins", id, "rexray.sock"))
	if err != nil || st.Mode().Perm() != 0o600 || st.Sys().(*syscall.Stat_t).Uid != 0 {
		t.Errorf("plugin socket: %v, %v; want mode 0600, owned by root", st.Mode(), err)
	}
}

func testCreateWriteRead(t *testing.T) {
	c := ctx(t)
	_, err := suite.cli.VolumeCreate(c, volume.CreateOptions{Name: "v1", Driver: plugin, DriverOpts: map[string]string{"size": "1"}})
	if err != nil {
		t.Fatal(err)
	}
	v, err := suite.cli.VolumeInspect(c, "v1")
	if err != nil {
		t.Fatal(err)
	}
	if v.Scope != "global" {
		t.Errorf("scope %q, want global", v.Scope)
	}
	for _, k := range []string{"name", "size", "iops", "type", "availabilityZone", "fields", "service", "server"} {
		if _, ok := v.Status[k]; !ok {
			t.Errorf("status lacks %q: %v", k, v.Status)
		}
	}
	if v.Status["size"] != 1.0 || v.Status["name"] != "v1" || v.Status["service"] != "loopback" {
		t.Errorf("status %v: want name v1, size 1, service loopback", v.Status)
	}
	if _, err := time.Parse(time.RFC3339, v.CreatedAt); err != nil {
		t.Errorf("CreatedAt %q is not RFC 3339: %v", v.CreatedAt, err)
	}
	// At a path the image lacks: Docker copies an image folder's mode onto
	// the volume (and the test image has /data).
	if mode := mustDocker(t, "run", "--rm", "-v", "v1:/vol", "busybox", "stat", "-c", "%a", "/vol"); mode != "700" {
		t.Errorf("data directory mode %s, want 700 (LINUX_VOLUME_FILEMODE)", mode)
	}
	list, err := suite.cli.VolumeList(c, volume.ListOptions{Filters: filters.NewArgs(filters.Arg("driver", plugin))})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Volumes) != 1 || list.Volumes[0].Name != "v1" {
		t.Errorf("volume ls: %v, want v1", list.Volumes)
	}

	mustDocker(t, "run", "--rm", "-v", "v1:/data", "busybox", "sh", "-c", "echo hello > /data/greeting")
	if out := mustDocker(t, "run", "--rm", "-v", "v1:/data", "busybox", "cat", "/data/greeting"); out != "hello" {
		t.Errorf("second container read %q, want hello", out)
	}

	// df: about 1 GB, the volume's size, not the host disk's.
	out := mustDocker(t, "run", "--rm", "-v", "v1:/data", "busybox", "sh", "-c", "df -k /data | tail -n 1")
	fields := strings.Fields(out)
	if len(fields) < 2 {
		t.Fatalf("df: %q", out)
	}
	kb, _ := strconv.ParseInt(fields[1], 10, 64)
	if gib := float64(kb) / (1 << 20); gib < 0.85 || gib > 1.0 {
		t.Errorf("df shows %.2f GiB in total, want about 1", gib)
	}

	// Past the size: ENOSPC inside, and the image stays within its size.
	_, err = suite.docker("run", "--rm", "-v", "v1:/data", "busybox", "dd", "if=/dev/zero", "of=/data/big", "bs=1M", "count=1536")
	if err == nil || !strings.Contains(err.Error(), "No space left on device") {
		t.Errorf("writing 1.5 GB into 1 GB: %v; want No space left on device", err)
	}
	var st os.FileInfo
	if st, err = os.Stat(suite.image("v1")); err != nil {
		t.Fatal(err)
	}
	if st.Size() != 1<<30 {
		t.Errorf("image is %d bytes, want %d", st.Size(), 1<<30)
	}
	mustDocker(t, "run", "--rm", "-v", "v1:/data", "busybox", "rm", "/data/big")
	released(t, "v1")
}

func testShared(t *testing.T) {
	mustDocker(t, "volume", "create", "-d", plugin, "-o", "size=64MiB", "v3")
	for _, c := range []string{"c3a", "c3b"} {
		mustDocker(t, "run", "-d", "--name", c, "-v", "v3:/data", "busybox", "sleep", "600")
	}
	attached(t, "v3")
	mustDocker(t, "exec", "c3a", "sh", "-c", "echo from-a > /data/a")
	mustDocker(t, "rm", "-f", "c3a")
	if out := mustDocker(t, "exec", "c3b", "sh", "-c", "cat /data/a && echo from-b > /data/b && cat /data/b"); out != "from-a\nfrom-b" {
		t.Errorf("after c3a stopped, c3b sees %q", out)
	}
	attached(t, "v3")
	mustDocker(t, "rm", "-f", "c3b")
	released(t, "v3")
}

// testDisableEnable: the mount ledger lives outside the rootfs, so a plugin
// restart under a running container loses no count.
func testDisableEnable(t *testing.T) {
	mustDocker(t, "volume", "create", "-d", plugin, "-o", "size=64MiB", "v4")
	mustDocker(t, "run", "-d", "--name", "c4", "-v", "v4:/data", "busybox", "sleep", "600")
	mustDocker(t, "exec", "c4", "sh", "-c", "echo kept > /data/f")
	mustDocker(t, "plugin", "disable", "-f", plugin)
	mustDocker(t, "plugin", "enable", plugin)
	if out := mustDocker(t, "exec", "c4", "cat", "/data/f"); out != "kept" {
		t.Errorf("after plugin restart the container reads %q", out)
	}
	if out := mustDocker(t, "run", "--rm", "-v", "v4:/data", "busybox", "cat", "/data/f"); out != "kept" {
		t.Errorf("a new container reads %q", out)
	}
	attached(t, "v4")
	mustDocker(t, "rm", "-f", "c4")
	released(t, "v4")
}

func testRemove(t *testing.T) {
	mustDocker(t, "volume", "create", "-d", plugin, "-o", "size=64MiB", "v5")
	mustDocker(t, "run", "-d", "--name", "c5", "-v", "v5:/data", "busybox", "sleep", "600")
	_, err := suite.docker("volume", "rm", "v5")
	if err == nil || !strings.Contains(err.Error(), "in use") {
		t.Errorf("rm of a volume in use: %v; want Docker's in-use error", err)
	}
	mustDocker(t, "rm", "-f", "c5")
	mustDocker(t, "volume", "rm", "v5")
	if _, err := os.Stat(suite.image("v5")); !os.IsNotExist(err) {
		t.Errorf("image of removed v5: %v, want it gone", err)
	}

	setEnv(t, "LIBSTORAGE_INTEGRATION_VOLUME_OPERATIONS_REMOVE_DISABLE=true")
	defer setEnv(t, "LIBSTORAGE_INTEGRATION_VOLUME_OPERATIONS_REMOVE_DISABLE=false")
	mustDocker(t, "volume", "create", "-d", plugin, "-o", "size=64MiB", "v5k")
	mustDocker(t, "run", "--rm", "-v", "v5k:/data", "busybox", "sh", "-c", "echo precious > /data/f")
	mustDocker(t, "volume", "rm", "v5k")
	if _, err := os.Stat(suite.image("v5k")); err != nil {
		t.Errorf("with REMOVE_DISABLE the image must stay: %v", err)
	}
	if out := mustDocker(t, "run", "--rm", "-v", "v5k:/data", "busybox", "cat", "/data/f"); out != "precious" {
		t.Errorf("data after a disabled remove: %q", out)
	}
}

// setEnv changes a plugin setting the way users do: disable, set, enable.
func setEnv(t *testing.T, kv string) {
	t.Helper()
	mustDocker(t, "plugin", "disable", "-f", plugin)
	mustDocker(t, "plugin", "set", plugin, kv)
	mustDocker(t, "plugin", "enable", plugin)
}

func testBadInput(t *testing.T) {
	before := storeFiles(t)
	cases := []struct {
		name string
		opts map[string]string
		want string
	}{
		{"bad1", map[string]string{"color": "red"}, "unknown option"},
		{"bad2", map[string]string{"size": "0"}, "invalid size"},
		{"bad3", map[string]string{"size": "abc"}, "invalid size"},
		{"bad4", map[string]string{"newfstype": "foo"}, "unknown filesystem type"},
		{"../x", nil, "invalid"},
	}
	for _, tc := range cases {
		_, err := suite.cli.VolumeCreate(ctx(t), volume.CreateOptions{Name: tc.name, Driver: plugin, DriverOpts: tc.opts})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("create %q %v: err %v, want one that says %q", tc.name, tc.opts, err, tc.want)
		}
	}
	if after := storeFiles(t); strings.Join(after, ",") != strings.Join(before, ",") {
		t.Errorf("store changed by refused creates: before %v, after %v", before, after)
	}
	if l := loopsUnder(suite.store); len(l) != 0 {
		t.Errorf("loop devices left: %v", l)
	}
	if m := volumeMounts("bad"); len(m) != 0 {
		t.Errorf("mounts left: %v", m)
	}
}

func storeFiles(t *testing.T) []string {
	t.Helper()
	entries, err := os.ReadDir(suite.volumesDir())
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

func testXFS(t *testing.T) {
	mustDocker(t, "volume", "create", "-d", plugin, "-o", "size=512MiB", "-o", "newfstype=xfs", "v7")
	out := mustDocker(t, "run", "--rm", "-v", "v7:/data", "busybox", "sh", "-c", "echo x7 > /data/f && stat -f -c %T /data")
	if out != "xfs" {
		t.Errorf("filesystem type %q, want xfs", out)
	}
	mustDocker(t, "volume", "create", "-d", plugin, "-o", "size=64MiB", "-o", "overwritefs=false", "v7b")
	mustDocker(t, "run", "--rm", "-v", "v7b:/data", "busybox", "sh", "-c", "echo data > /data/f")
	released(t, "v7b")
	if out := mustDocker(t, "run", "--rm", "-v", "v7b:/data", "busybox", "cat", "/data/f"); out != "data" {
		t.Errorf("remount with overwritefs=false reads %q, want data", out)
	}
	if out := mustDocker(t, "run", "--rm", "-v", "v7:/data", "busybox", "cat", "/data/f"); out != "x7" {
		t.Errorf("xfs volume remounted reads %q", out)
	}
}

func testSwarm(t *testing.T) {
	mustDocker(t, "swarm", "init", "--advertise-addr", "127.0.0.1")
	defer suite.docker("swarm", "leave", "--force")
	mustDocker(t, "service", "create", "--detach", "--name", "s8", "--no-resolve-image",
		"--restart-condition", "none",
		"--mount", "type=volume,source=sw8,target=/data,volume-driver="+plugin+",volume-opt=size=64MiB",
		"busybox", "sh", "-c", "echo from-swarm > /data/f && sleep 600")
	waitFor(t, "the service task to run", 90*time.Second, func() bool {
		out, _ := suite.docker("service", "ps", "--format", "{{.CurrentState}}", "s8")
		return strings.HasPrefix(out, "Running")
	})
	waitFor(t, "the task to write", 30*time.Second, func() bool {
		out, _ := suite.docker("run", "--rm", "-v", "sw8:/data", "busybox", "cat", "/data/f")
		return out == "from-swarm"
	})
	v, err := suite.cli.VolumeInspect(ctx(t), "sw8")
	if err != nil || v.Driver != plugin || v.Scope != "global" {
		t.Errorf("sw8: %+v, %v; want a global rexray volume", v, err)
	}
	mustDocker(t, "service", "rm", "s8")
	waitFor(t, "the task's container to go", 60*time.Second, func() bool {
		out, _ := suite.docker("ps", "-aq", "--filter", "volume=sw8")
		return out == ""
	})
	released(t, "sw8")
}

// testNothingLeftBehind: removing every volume leaves an empty store, no
// loop device and no mount.
func testNothingLeft(t *testing.T) {
	suite.docker("rm", "-f", "c3a", "c3b", "c4", "c5") // left by a failed step
	setEnv(t, "LIBSTORAGE_INTEGRATION_VOLUME_OPERATIONS_REMOVE_DISABLE=false")
	for _, v := range strings.Fields(mustDocker(t, "volume", "ls", "-q", "--filter", "driver="+plugin)) {
		mustDocker(t, "volume", "rm", v)
	}
	if files := storeFiles(t); len(files) != 0 {
		t.Errorf("store not empty after removing every volume: %v", files)
	}
	if l := loopsUnder(suite.store); len(l) != 0 {
		t.Errorf("loop devices left: %v", l)
	}
	// What the plugin made in its store and ledger is root's alone.
	for _, root := range []string{suite.volumesDir(), suite.state} {
		filepath.Walk(root, func(path string, info os.FileInfo, err error) error {
			if err == nil && path != suite.state && info.Mode().Perm()&0o077 != 0 {
				t.Errorf("%s has mode %o: group or others can get in", path, info.Mode().Perm())
			}
			return nil
		})
	}
	if m := mountsUnder(suite.dir); len(m) != 0 {
		for _, mp := range m {
			if strings.Contains(mp, "propagated-mount/") {
				t.Errorf("volume mount left: %s", mp)
			}
		}
	}
}

// installAlso installs the plugin a second time, disabled, under alias,
// with the given mount sources, and removes it when the test ends.
func installAlso(t *testing.T, alias, store, state string) {
	t.Helper()
	mustDocker(t, "plugin", "install", "--grant-all-permissions", "--disable", "--alias", alias, suite.registry+"/rexray/loopback:test")
	t.Cleanup(func() { suite.docker("plugin", "rm", "-f", alias) })
	mustDocker(t, "plugin", "set", alias, "store.source="+store, "state.source="+state)
}

// testLedgerInUse: a second plugin given the first one's state folder must
// refuse to start, and say why, rather than hang or share the ledger.
func testLedgerInUse(t *testing.T) {
	const second = "rexray/second:latest"
	installAlso(t, second, suite.store, suite.state)
	if _, err := suite.docker("plugin", "enable", second); err == nil {
		t.Fatal("a second plugin on a ledger in use was enabled")
	}
	log, err := os.ReadFile(filepath.Join(suite.dir, "d", "dockerd.log"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(log), "is in use by another rexray process") {
		t.Error("the plugin's log (in dockerd's) does not say the ledger is in use")
	}
	if out := mustDocker(t, "plugin", "inspect", "--format", "{{.Enabled}}", plugin); out != "true" {
		t.Errorf("the first plugin: enabled=%s", out)
	}
}

// testMissingSources: dockerd refuses a plugin whose mount sources do not
// exist, which is why the README's install command makes them first.
func testMissingSources(t *testing.T) {
	const fresh = "rexray/fresh:latest"
	store, state := filepath.Join(suite.dir, "fresh", "store"), filepath.Join(suite.dir, "fresh", "state")
	installAlso(t, fresh, store, state)
	_, err := suite.docker("plugin", "enable", fresh)
	if err == nil || !strings.Contains(err.Error(), "no such file or directory") {
		t.Fatalf("enable with missing sources: %v; want dockerd's stat error", err)
	}
	for _, d := range []string{store, state} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	mustDocker(t, "plugin", "enable", fresh)
	mustDocker(t, "plugin", "disable", fresh)
}

// testDockerfile: the Dockerfile wraps the assembled rootfs and pulls nothing.
func testDockerfile(t *testing.T) {
	mustDocker(t, "build", "-q", "-t", "rexray-rootfs:test", suite.repo)
	id := mustDocker(t, "create", "rexray-rootfs:test")
	defer suite.docker("rm", id)
	files := map[string]bool{}
	tr := tar.NewReader(strings.NewReader(mustDocker(t, "export", id)))
	for {
		h, err := tr.Next()
		if err != nil {
			break
		}
		files[h.Name] = true
	}
	for _, f := range []string{"usr/bin/rexray", "sbin/mkfs.ext4", "sbin/mkfs.xfs", "sbin/blkid", "etc/mke2fs.conf"} {
		if !files[f] {
			t.Errorf("image lacks %s", f)
		}
	}
	// Nothing in the plugin can run through a shell: there is none.
	for f := range files {
		switch filepath.Base(f) {
		case "sh", "bash", "dash", "ash", "busybox":
			t.Errorf("the plugin's rootfs carries a shell: %s", f)
		}
	}
}

// testCopy: -o volumeName copies a volume a container is writing to; the
// copy holds what was written before, and the source goes on.
func testCopy(t *testing.T) {
	mustDocker(t, "volume", "create", "-d", plugin, "-o", "size=64MiB", "orig")
	mustDocker(t, "run", "-d", "--name", "writer", "-v", "orig:/data", "busybox", "sh", "-c", "echo first > /data/f; sleep 600")
	defer suite.docker("rm", "-f", "writer")
	waitFor(t, "the writer", 20*time.Second, func() bool {
		out, _ := suite.docker("exec", "writer", "cat", "/data/f")
		return out == "first"
	})
	mustDocker(t, "volume", "create", "-d", plugin, "-o", "volumeName=orig", "copy")
	mustDocker(t, "exec", "writer", "sh", "-c", "echo second >> /data/f")
	if out := mustDocker(t, "run", "--rm", "-v", "copy:/data", "busybox", "cat", "/data/f"); out != "first" {
		t.Errorf("the copy holds %q, want what was written before it", out)
	}
	v, err := suite.cli.VolumeInspect(ctx(t), "copy")
	if err != nil {
		t.Fatal(err)
	}
	if fields, _ := v.Status["fields"].(map[string]any); fields["origin"] != "orig" || v.Status["size"] != 0.0625 {
		t.Errorf("copy's status %v: want origin orig, size 0.0625", v.Status)
	}
	mustDocker(t, "rm", "-f", "writer")
	released(t, "orig")
	mustDocker(t, "volume", "rm", "orig", "copy")
}
