//go:build integration

package integration

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/rexray/rexray/api/client"
)

// TestFaults breaks things the way hosts and daemons break, on the real
// dockerd, and checks that nothing is lost and nothing leaks.
func TestFaults(t *testing.T) {
	ensurePlugin(t)
	t.Run("KillDuringCalls", testKillDuringCalls)
	t.Run("DockerdRestart", testDockerdRestart)
	t.Run("HostReboot", testHostReboot)
	t.Run("PluginLateAtDockerdStart", testPluginLateAtStart)
}

// ensurePlugin installs the plugin when this test runs on its own.
func ensurePlugin(t *testing.T) {
	if out, err := suite.docker("plugin", "inspect", "--format", "{{.Enabled}}", plugin); err == nil && out == "true" {
		return
	}
	testInstall(t)
}

// managed is the plugin as dockerd runs it.
type managed struct {
	id string
}

func pluginNow(t *testing.T) managed {
	t.Helper()
	return managed{id: mustDocker(t, "plugin", "inspect", "--format", "{{.Id}}", plugin)}
}

func (m managed) client() *client.Client {
	return client.New(filepath.Join("/run/docker/plugins", m.id, "rexray.sock"))
}

// pid is the plugin process, as our containerd knows it.
func (m managed) pid(t *testing.T) int {
	t.Helper()
	return taskPID(m.id)
}

// dataPath is a mounted volume's data folder on the host, under dockerd's
// data root; this process reaches it at inEngine(dataPath).
func (m managed) dataPath(name string) string {
	return filepath.Join(suite.dir, "d", "root", "plugins", m.id, "propagated-mount", "volumes", name, "data")
}

// answering waits until a plugin other than the killed one answers, then
// gives dockerd a moment to finish activating it: dockerd 20.10 leaves a
// plugin that dies while it is being activated disabled, which is
// dockerd's doing, not a state of the plugin worth testing.
func (m managed) answering(t *testing.T, killed int) {
	t.Helper()
	waitFor(t, "dockerd to restart the plugin", 60*time.Second, func() bool {
		pid := m.pid(t)
		if pid == 0 || pid == killed {
			return false
		}
		c, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_, err := m.client().Call(c, "List", client.Request{})
		return err == nil
	})
	time.Sleep(time.Second)
}

// model is what the test has been told succeeded: the truth to check.
type model struct {
	data   map[string]string   // volume → what was written into it
	mounts map[string][]string // volume → mount IDs held
	// containers hold the mounts as dockerd's containers do, by mount ID.
	containers map[string]*container
}

// container is what dockerd makes of a Mount that succeeded: a process in
// a mount namespace of its own that holds a bind of the volume's data
// folder. The plugin asks the kernel whether a mount ID still stands for
// a container, so the model's mounts are held as Docker's are; a
// container ends before its Unmount is sent, as dockerd does it.
type container struct {
	cmd *exec.Cmd
	dir string
}

func startContainer(t *testing.T, src string) *container {
	t.Helper()
	dir, err := os.MkdirTemp(suite.dir, "ctr-") // before the namespace is made
	if err != nil {
		t.Fatal(err)
	}
	// A copy of the engine's mount namespace, as dockerd's containers are.
	c := &container{cmd: engineCommand("unshare", "--mount", "--propagation", "private", "sleep", "3600"), dir: dir}
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := strconv.Itoa(c.cmd.Process.Pid)
	waitFor(t, "a process in a mount namespace of its own", 10*time.Second, func() bool {
		exe, _ := os.Readlink(filepath.Join("/proc", pid, "exe"))
		return filepath.Base(exe) == "sleep" // unshare execs it once the namespace is made
	})
	if out, err := exec.Command("nsenter", "--target", pid, "--mount", "mount", "--bind", src, dir).CombinedOutput(); err != nil {
		c.stop()
		t.Fatalf("bind %s in the container's namespace: %v: %s", src, err, out)
	}
	return c
}

func (c *container) stop() {
	c.cmd.Process.Kill()
	c.cmd.Wait()
	os.Remove(c.dir)
}

// stopContainer ends the container of a mount ID, if it has one.
func (md *model) stopContainer(name, id string) {
	if c := md.containers[name+" "+id]; c != nil {
		c.stop()
		delete(md.containers, name+" "+id)
	}
}

func (md *model) stopAll() {
	for key, c := range md.containers {
		c.stop()
		delete(md.containers, key)
	}
}

func faultPoints() int {
	if n, err := strconv.Atoi(os.Getenv("FAULT_POINTS")); err == nil && n > 0 {
		return n
	}
	return 100
}

// testKillDuringCalls sends Create, Mount, Unmount and Remove to the
// plugin's socket and kills it with SIGKILL a random few milliseconds in,
// FAULT_POINTS times. dockerd restarts it; the call is then retried as
// dockerd retries it, and the store, ledger, loop devices and mounts must
// agree with what succeeded.
func testKillDuringCalls(t *testing.T) {
	m := pluginNow(t)
	md := &model{data: map[string]string{}, mounts: map[string][]string{}, containers: map[string]*container{}}
	t.Cleanup(md.stopAll)
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 42))
	seed := rng.Uint64()
	t.Logf("seed %d", seed)
	rng = rand.New(rand.NewPCG(seed, 42))
	points := faultPoints()
	for i := range points {
		name, req, method := md.next(rng, i)
		if method == "Unmount" {
			md.stopContainer(name, req.ID)
		}
		done := make(chan error, 1)
		go func() {
			c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			_, err := m.client().Call(c, method, req)
			done <- err
		}()
		time.Sleep(time.Duration(rng.IntN(12000)) * time.Microsecond)
		pid := m.pid(t)
		if pid == 0 {
			t.Fatalf("point %d: no plugin process", i)
		}
		syscall.Kill(pid, syscall.SIGKILL)
		<-done
		m.answering(t, pid)
		// dockerd retries a call that lost its connection: so do we.
		c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		_, err := m.client().Call(c, method, req)
		cancel()
		if err != nil {
			t.Fatalf("point %d: %s %s after restart: %v", i, method, name, err)
		}
		md.applied(t, m, method, req, i)
		md.check(t, m, i)
	}
	md.checkData(t, m)
	md.cleanup(t, m)
	t.Logf("%d kill points", points)
}

// next picks a call that makes sense for the model.
func (md *model) next(rng *rand.Rand, i int) (string, client.Request, string) {
	var held, idle []string
	for v := range md.data {
		if len(md.mounts[v]) > 0 {
			held = append(held, v)
		} else {
			idle = append(idle, v)
		}
	}
	slices.Sort(held)
	slices.Sort(idle)
	all := append(append([]string(nil), held...), idle...)
	switch r := rng.IntN(4); {
	case r == 0 || len(all) == 0 || len(md.data) < 3:
		name := fmt.Sprintf("k%03d", i)
		return name, client.Request{Name: name, Opts: map[string]string{"size": "16MiB"}}, "Create"
	case r == 1:
		v := all[rng.IntN(len(all))]
		return v, client.Request{Name: v, ID: fmt.Sprintf("id%03d", i)}, "Mount"
	case r == 2 && len(held) > 0:
		v := held[rng.IntN(len(held))]
		ids := md.mounts[v]
		return v, client.Request{Name: v, ID: ids[rng.IntN(len(ids))]}, "Unmount"
	case len(idle) > 0:
		v := idle[rng.IntN(len(idle))]
		return v, client.Request{Name: v}, "Remove"
	default:
		v := all[rng.IntN(len(all))]
		return v, client.Request{Name: v, ID: fmt.Sprintf("id%03d", i)}, "Mount"
	}
}

// applied records a call that succeeded; a new mount gets data written.
func (md *model) applied(t *testing.T, m managed, method string, req client.Request, i int) {
	t.Helper()
	switch method {
	case "Create":
		md.data[req.Name] = ""
	case "Remove":
		delete(md.data, req.Name)
	case "Unmount":
		md.mounts[req.Name] = slices.DeleteFunc(md.mounts[req.Name], func(id string) bool { return id == req.ID })
	case "Mount":
		md.mounts[req.Name] = append(md.mounts[req.Name], req.ID)
		content := fmt.Sprintf("%s written at point %d", req.Name, i)
		f := inEngine(filepath.Join(m.dataPath(req.Name), "f"))
		if err := os.WriteFile(f, []byte(content), 0o600); err != nil {
			t.Fatalf("point %d: write into %s: %v", i, req.Name, err)
		}
		if fd, err := os.Open(f); err == nil {
			fd.Sync()
			fd.Close()
		}
		md.data[req.Name] = content
		md.containers[req.Name+" "+req.ID] = startContainer(t, m.dataPath(req.Name))
	}
}

// check compares the plugin's view, the store and the kernel with the model.
func (md *model) check(t *testing.T, m managed, i int) {
	t.Helper()
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	list, err := m.client().Call(c, "List", client.Request{})
	if err != nil {
		t.Fatalf("point %d: List: %v", i, err)
	}
	var listed []string
	for _, v := range list.Volumes {
		listed = append(listed, v.Name)
	}
	slices.Sort(listed)
	var want []string
	for v := range md.data {
		want = append(want, v)
	}
	slices.Sort(want)
	if !slices.Equal(listed, want) {
		t.Fatalf("point %d: listed %v, created %v", i, listed, want)
	}
	files, _ := os.ReadDir(suite.volumesDir())
	var names []string
	for _, f := range files {
		names = append(names, f.Name())
	}
	for _, v := range want {
		for _, ext := range []string{".img", ".json"} {
			if !slices.Contains(names, v+ext) {
				t.Fatalf("point %d: %s%s missing from the store", i, v, ext)
			}
		}
	}
	// A volume containers hold has this host's lease beside it; no other
	// volume has one.
	expected := 2 * len(want)
	for _, v := range want {
		if len(md.mounts[v]) > 0 {
			if !slices.Contains(names, v+".lease") {
				t.Fatalf("point %d: %s is held but has no lease", i, v)
			}
			expected++
		}
	}
	if len(names) != expected {
		t.Fatalf("point %d: store holds %v for volumes %v (held: %v): leftovers", i, names, want, md.mounts)
	}
	for _, v := range want {
		held := len(md.mounts[v]) > 0
		loops, mounts := loopsOf(suite.image(v)), volumeMounts(v)
		if held && (len(loops) != 1 || len(mounts) == 0) {
			t.Fatalf("point %d: %s held by %v but loops %v, mounts %v", i, v, md.mounts[v], loops, mounts)
		}
		if !held && (len(loops) != 0 || len(mounts) != 0) {
			t.Fatalf("point %d: %s held by nobody but loops %v, mounts %v", i, v, loops, mounts)
		}
		get, err := m.client().Call(c, "Get", client.Request{Name: v})
		if err != nil || (get.Volume.Mountpoint != "") != held {
			t.Fatalf("point %d: Get %s = %+v, %v; the ledger disagrees with held=%v", i, v, get, err, held)
		}
	}
}

// checkData mounts every volume and reads back what was written into it.
func (md *model) checkData(t *testing.T, m managed) {
	t.Helper()
	c := context.Background()
	for v, content := range md.data {
		if content == "" {
			continue
		}
		if _, err := m.client().Call(c, "Mount", client.Request{Name: v, ID: "verify"}); err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(inEngine(filepath.Join(m.dataPath(v), "f")))
		if err != nil || string(got) != content {
			t.Errorf("%s holds %q, %v; want %q", v, got, err, content)
		}
		if _, err := m.client().Call(c, "Unmount", client.Request{Name: v, ID: "verify"}); err != nil {
			t.Fatal(err)
		}
	}
}

func (md *model) cleanup(t *testing.T, m managed) {
	c := context.Background()
	for v, ids := range md.mounts {
		for _, id := range ids {
			md.stopContainer(v, id)
			m.client().Call(c, "Unmount", client.Request{Name: v, ID: id})
		}
	}
	for v := range md.data {
		if _, err := m.client().Call(c, "Remove", client.Request{Name: v}); err != nil {
			t.Error(err)
		}
		released(t, v)
	}
}

// testDockerdRestart restarts dockerd under a running container, without
// and then with live-restore: volumes keep their Docker metadata, the
// container finds its data, and the counts are right afterwards.
func testDockerdRestart(t *testing.T) {
	for _, live := range []bool{false, true} {
		t.Run(fmt.Sprintf("live-restore=%v", live), func(t *testing.T) {
			if live {
				// live-restore is the running daemon's setting at shutdown.
				restartDockerd(t, true)
			}
			vol, ctr := fmt.Sprintf("restart-%v", live), fmt.Sprintf("c-restart-%v", live)
			mustDocker(t, "volume", "create", "-d", plugin, "-o", "size=64MiB", vol)
			mustDocker(t, "run", "-d", "--name", ctr, "--restart", "always", "-v", vol+":/data", "busybox",
				"sh", "-c", "echo started >> /data/f; sync; sleep 600")
			waitFor(t, ctr+" to write", 20*time.Second, func() bool {
				out, _ := suite.docker("exec", ctr, "cat", "/data/f")
				return out == "started"
			})
			before := mustDocker(t, "inspect", "--format", "{{.State.StartedAt}}", ctr)

			restartDockerd(t, live)
			everyVolumeInspects(t)
			waitFor(t, ctr+" to run again", 60*time.Second, func() bool {
				out, _ := suite.docker("inspect", "--format", "{{.State.Running}}", ctr)
				return out == "true"
			})
			after := mustDocker(t, "inspect", "--format", "{{.State.StartedAt}}", ctr)
			if live && after != before {
				t.Errorf("with live-restore the container was restarted (%s, then %s)", before, after)
			}
			want := map[bool]string{true: "started", false: "started\nstarted"}[live]
			waitFor(t, ctr+" to find its data", 20*time.Second, func() bool {
				out, _ := suite.docker("exec", ctr, "cat", "/data/f")
				return out == want
			})
			attached(t, vol)
			mustDocker(t, "rm", "-f", ctr)
			released(t, vol)
			mustDocker(t, "volume", "rm", vol)
		})
	}
	restartDockerd(t, false)
}

// restartDockerd stops the test dockerd with SIGTERM, as a service manager
// does, and starts it again over the same folders.
func restartDockerd(t *testing.T, liveRestore bool) {
	t.Helper()
	stopDockerd(t)
	extra := ""
	if liveRestore {
		extra = "--live-restore"
	}
	startDockerd(t, extra)
	waitFor(t, "the plugin to be enabled again", 60*time.Second, func() bool {
		out, _ := suite.docker("plugin", "inspect", "--format", "{{.Enabled}}", plugin)
		return out == "true"
	})
}

func stopDockerd(t *testing.T) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(suite.dir, "d", "dockerd.pid"))
	if err != nil {
		t.Fatal(err)
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	syscall.Kill(pid, syscall.SIGTERM)
	waitFor(t, "dockerd to stop", 60*time.Second, func() bool { return syscall.Kill(pid, 0) != nil })
}

// startDockerd starts the test dockerd over its folders, with extra flags.
func startDockerd(t *testing.T, extra string) {
	t.Helper()
	if _, err := suite.engineUp("DOCKERD_EXTRA_ARGS=" + extra); err != nil {
		t.Fatal(err)
	}
}

// everyVolumeInspects: dockerd forgets a volume whose Get fails at start.
func everyVolumeInspects(t *testing.T) {
	t.Helper()
	for _, v := range strings.Fields(mustDocker(t, "volume", "ls", "-q", "--filter", "driver="+plugin)) {
		mustDocker(t, "volume", "inspect", v)
	}
}

// testHostReboot cuts the power of the Docker host: every process killed,
// every mount and loop device gone, the store and ledger kept. After boot
// the plugin reconciles and the container finds its data.
func testHostReboot(t *testing.T) {
	const vol, ctr = "reboot", "c-reboot"
	mustDocker(t, "volume", "create", "-d", plugin, "-o", "size=64MiB", vol)
	mustDocker(t, "volume", "create", "-d", plugin, "-o", "size=64MiB", "reboot-idle")
	mustDocker(t, "run", "-d", "--name", ctr, "--restart", "always", "-v", vol+":/data", "busybox",
		"sh", "-c", "echo boot >> /data/f; sync; sleep 600")
	waitFor(t, ctr+" to write", 20*time.Second, func() bool {
		out, _ := suite.docker("exec", ctr, "cat", "/data/f")
		return out == "boot"
	})
	dir := filepath.Join(suite.dir, "d")
	if err := suite.engineCrash(); err != nil {
		t.Fatal(err)
	}
	// The kernel forgets its loop devices at a reboot.
	for _, dev := range loopsUnder(suite.store) {
		if _, err := runCmd("losetup", "-d", dev); err != nil {
			t.Fatal(err)
		}
	}
	if m := mountsUnder(dir); len(m) != 0 {
		t.Fatalf("mounts survived the crash: %v", m)
	}
	if _, err := suite.engineUp(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, ctr+" to run again", 90*time.Second, func() bool {
		out, _ := suite.docker("exec", ctr, "cat", "/data/f")
		return out == "boot\nboot"
	})
	everyVolumeInspects(t)
	attached(t, vol)
	mustDocker(t, "rm", "-f", ctr)
	released(t, vol)
	released(t, "reboot-idle")
	mustDocker(t, "volume", "rm", vol, "reboot-idle")
}

// testPluginLateAtStart starts dockerd while the plugin cannot answer:
// first absent (it cannot start: its ledger is held by another process),
// then slow (stopped with SIGSTOP as dockerd starts it). Either way dockerd
// must not forget the volumes, and they keep their data.
func testPluginLateAtStart(t *testing.T) {
	const vol = "late"
	mustDocker(t, "volume", "create", "-d", plugin, "-o", "size=64MiB", vol)
	mustDocker(t, "run", "--rm", "-v", vol+":/data", "busybox", "sh", "-c", "echo kept > /data/f")

	t.Run("absent", func(t *testing.T) {
		stopDockerd(t)
		db, err := bolt.Open(filepath.Join(suite.state, "rexray.db"), 0o600, &bolt.Options{Timeout: 5 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		startDockerd(t, "")
		// The plugin fails to start; dockerd restores its volume records
		// meanwhile, and gives up on the plugin, leaving it disabled.
		waitFor(t, "dockerd to give up on the plugin", 60*time.Second, func() bool {
			out, _ := suite.docker("plugin", "inspect", "--format", "{{.Enabled}}", plugin)
			return out == "false"
		})
		_, err = suite.docker("volume", "inspect", vol)
		t.Logf("while the plugin is absent, docker volume inspect says: %v", err)
		db.Close()
		// dockerd 20.10 leaves the failed plugin's containerd container
		// behind, and enable then fails with "id already in use".
		id := mustDocker(t, "plugin", "inspect", "--format", "{{.Id}}", plugin)
		runCmd("ctr", "--address", filepath.Join(suite.dir, "d", "containerd", "containerd.sock"), "-n", "plugins.moby", "containers", "rm", id)
		mustDocker(t, "plugin", "enable", plugin)
		assertKept(t, vol)
	})
	t.Run("slow", func(t *testing.T) {
		stopDockerd(t)
		stopped := make(chan int, 1)
		go func() {
			// Stop the plugin the moment containerd shows it.
			deadline := time.Now().Add(60 * time.Second)
			for time.Now().Before(deadline) {
				if pid := pluginPIDOnStart(); pid != 0 {
					syscall.Kill(pid, syscall.SIGSTOP)
					stopped <- pid
					return
				}
				time.Sleep(5 * time.Millisecond)
			}
			stopped <- 0
		}()
		startDockerd(t, "")
		pid := <-stopped
		if pid == 0 {
			t.Fatal("the plugin never started")
		}
		time.Sleep(15 * time.Second)
		syscall.Kill(pid, syscall.SIGCONT)
		waitFor(t, "the plugin to answer", 60*time.Second, func() bool {
			_, err := suite.docker("volume", "inspect", vol)
			return err == nil
		})
		assertKept(t, vol)
	})
	mustDocker(t, "volume", "rm", vol)
}

func assertKept(t *testing.T, vol string) {
	t.Helper()
	everyVolumeInspects(t)
	if out := mustDocker(t, "run", "--rm", "-v", vol+":/data", "busybox", "cat", "/data/f"); out != "kept" {
		t.Errorf("%s holds %q, want kept", vol, out)
	}
	released(t, vol)
}

// pluginPIDOnStart finds the plugin's process; it runs in a goroutine
// while dockerd starts, so it reports failure as 0, not through a test.
func pluginPIDOnStart() int {
	id, err := suite.docker("plugin", "inspect", "--format", "{{.Id}}", plugin)
	if err != nil {
		return 0
	}
	return taskPID(id)
}

// taskPID is the PID of containerd's running task id in the plugins
// namespace, or 0.
func taskPID(id string) int {
	out, err := runCmd("ctr", "--address", filepath.Join(suite.dir, "d", "containerd", "containerd.sock"), "-n", "plugins.moby", "tasks", "ls")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(out, "\n") {
		if f := strings.Fields(l); len(f) >= 3 && f[0] == id && f[2] == "RUNNING" {
			pid, _ := strconv.Atoi(f[1])
			return pid
		}
	}
	return 0
}

func soakOps() int {
	if n, err := strconv.Atoi(os.Getenv("SOAK_OPS")); err == nil && n > 0 {
		return n
	}
	return 200
}

// TestSoak: 8 workers share a few volumes through dockerd (create, copy,
// write from short-lived containers, hold from long-lived ones, stop them,
// remove), SOAK_OPS operations in all. Afterwards the ledger agrees with
// reality, nothing leaks and every volume passes fsck.
func TestSoak(t *testing.T) {
	ensurePlugin(t)
	const workers = 8
	ops := soakOps()
	names := []string{"soak0", "soak1", "soak2", "soak3", "soak4", "soak5"}
	errs := make(chan error, workers)
	var started []string
	var mu sync.Mutex
	kinds := []string{"create", "write", "write", "hold", "stop", "remove", "copy"}
	done, raced := map[string]int{}, map[string]int{}
	for w := range workers {
		go func() {
			rng := rand.New(rand.NewPCG(uint64(w), uint64(time.Now().UnixNano())))
			var mine []string
			for i := range ops / workers {
				vol := names[rng.IntN(len(names))]
				var err error
				op := rng.IntN(len(kinds))
				switch op {
				case 0:
					_, err = suite.docker("volume", "create", "-d", plugin, "-o", "size=32MiB", vol)
				case 1, 2:
					_, err = suite.docker("run", "--rm", "--volume-driver", plugin, "-v", vol+":/data", "busybox", "sh", "-c", fmt.Sprintf("echo %d-%d >> /data/log", w, i))
				case 3:
					name := fmt.Sprintf("soak-w%d-%d", w, i)
					if _, err = suite.docker("run", "-d", "--name", name, "--volume-driver", plugin, "-v", vol+":/data", "busybox", "sleep", "600"); err == nil {
						mine = append(mine, name)
						mu.Lock()
						started = append(started, name)
						mu.Unlock()
					}
				case 4:
					if len(mine) > 0 {
						k := rng.IntN(len(mine))
						_, err = suite.docker("rm", "-f", mine[k])
						mine = append(mine[:k], mine[k+1:]...)
					}
				case 5:
					_, err = suite.docker("volume", "rm", vol)
				case 6:
					// Another name: a copy onto itself is bad input (refused
					// at once, tested with the rest of it), not a race.
					from := names[(slices.Index(names, vol)+1+rng.IntN(len(names)-1))%len(names)]
					_, err = suite.docker("volume", "create", "-d", plugin, "-o", "volumeName="+from, vol)
				}
				// What a user is told when another worker got there first.
				if err != nil && !expectedRace(err) {
					errs <- fmt.Errorf("worker %d op %d on %s: %w", w, i, vol, err)
					return
				}
				mu.Lock()
				if err == nil {
					done[kinds[op]]++
				} else {
					raced[kinds[op]]++
				}
				mu.Unlock()
			}
			errs <- nil
		}()
	}
	for range workers {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	if len(started) > 0 {
		suite.docker(append([]string{"rm", "-f"}, started...)...)
	}
	left := strings.Fields(mustDocker(t, "volume", "ls", "-q", "--filter", "driver="+plugin))
	m := pluginNow(t)
	for _, v := range left {
		released(t, v)
		get, err := m.client().Call(context.Background(), "Get", client.Request{Name: v})
		if err != nil || get.Volume.Mountpoint != "" {
			t.Errorf("%s: Get = %+v, %v; the ledger still holds it", v, get, err)
		}
		fsck(t, v)
		mustDocker(t, "volume", "rm", v)
	}
	if files, _ := os.ReadDir(suite.volumesDir()); len(files) != 0 {
		var names []string
		for _, f := range files {
			names = append(names, f.Name())
		}
		t.Errorf("store holds %v after every volume was removed", names)
	}
	t.Logf("%d operations by %d workers; %d volumes at the end; done %v; refused because another worker got there first %v",
		ops/workers*workers, workers, len(left), done, raced)
}

// expectedRace tells the errors a worker may get because another changed
// the volume first: it is in use, it is gone, it exists as another copy.
func expectedRace(err error) bool {
	for _, s := range []string{"in use", "no such volume", "not found", "exists and differs", "a copy cannot shrink", "keeps its filesystem"} {
		if strings.Contains(err.Error(), s) {
			return true
		}
	}
	return false
}

// fsck checks a released volume's filesystem, read-only.
func fsck(t *testing.T, v string) {
	t.Helper()
	dev, err := runCmd("losetup", "--find", "--show", "--read-only", suite.image(v))
	if err != nil {
		t.Fatal(err)
	}
	dev = strings.TrimSpace(dev)
	defer runCmd("losetup", "-d", dev)
	if out, err := runCmd("blkid", "-p", "-s", "TYPE", "-o", "value", dev); err != nil || strings.TrimSpace(out) == "" {
		return // never mounted: never formatted, nothing to check
	}
	if out, err := runCmd("fsck", "-n", "-f", dev); err != nil {
		t.Errorf("fsck of %s: %v\n%s", v, err, out)
	}
}
