//go:build integration

package integration

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestStaleHolds: dockerd sends no Unmount for a container removed while
// the plugin is disabled; the plugin finds out from the kernel, and never
// takes a volume from a container that still runs.
func TestStaleHolds(t *testing.T) {
	ensurePlugin(t)
	t.Run("ContainerRemovedWhileDisabled", testRemovedWhileDisabled)
	t.Run("ContainerRunningThroughDisable", testRunningThroughDisable)
	t.Run("ImageDeletedWhileMounted", testImageDeleted)
	t.Run("ImageDeletedWhileDisabled", testImageDeletedWhileDisabled)
}

// loopsOfDeleted lists the loop devices still bound to a volume's image
// after the image was deleted: the kernel shows its path with
// " (deleted)", as seen from the plugin's mount namespace.
func loopsOfDeleted(name string) []string {
	var devs []string
	paths, _ := filepath.Glob("/sys/block/loop*/loop/backing_file")
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err == nil && strings.HasSuffix(strings.TrimSpace(string(b)), "/volumes/"+name+".img (deleted)") {
			devs = append(devs, "/dev/"+filepath.Base(filepath.Dir(filepath.Dir(p))))
		}
	}
	return devs
}

// eventually polls cond until it holds or the timeout passes, and tells
// which.
func eventually(timeout time.Duration, cond func() bool) bool {
	for deadline := time.Now().Add(timeout); !cond(); time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			return false
		}
	}
	return true
}

// detachDeleted detaches, at the end of a test, what loopsOfDeleted finds
// for its volume: the suite's teardown finds devices by their image, which
// is gone.
func detachDeleted(t *testing.T, name string) {
	t.Cleanup(func() {
		for _, dev := range loopsOfDeleted(name) {
			t.Errorf("detaching %s, left on the deleted image of %s", dev, name)
			runCmd("losetup", "-d", dev)
		}
	})
}

// run starts a container holding the volume, removed at the end.
func run(t *testing.T, container, vol string) {
	t.Helper()
	mustDocker(t, "run", "-d", "--name", container, "-v", vol+":/data", "busybox", "sleep", "600")
	t.Cleanup(func() { suite.docker("rm", "-f", container) })
}

// enabled makes sure the plugin is enabled again after a test that
// disabled it, whatever happened.
func enabled(t *testing.T) {
	t.Cleanup(func() { suite.docker("plugin", "enable", plugin) })
}

func testRemovedWhileDisabled(t *testing.T) {
	enabled(t)
	mustDocker(t, "volume", "create", "-d", plugin, "-o", "size=64MiB", "st1")
	run(t, "cst1", "st1")
	mustDocker(t, "exec", "cst1", "sh", "-c", "echo x > /data/f")
	mustDocker(t, "plugin", "disable", "-f", plugin)
	mustDocker(t, "rm", "-f", "cst1") // dockerd cannot tell the plugin
	mustDocker(t, "plugin", "enable", plugin)
	// Released once the plugin is back (it reconciles after it answers
	// enable), without a step of the user's.
	if !eventually(10*time.Second, func() bool { return len(loopsOf(suite.image("st1")))+len(volumeMounts("st1")) == 0 }) {
		t.Errorf("after enable, no container uses st1 but it is still on %v, mounted at %v", loopsOf(suite.image("st1")), volumeMounts("st1"))
	}
	if _, err := suite.docker("volume", "rm", "st1"); err != nil {
		t.Fatalf("volume rm after its container went while the plugin was disabled: %v", err)
	}
	if _, err := os.Stat(suite.image("st1")); !os.IsNotExist(err) {
		t.Errorf("image of removed st1: %v, want it gone", err)
	}
	if l := loopsOfDeleted("st1"); len(l) != 0 {
		t.Errorf("loop devices left on the removed image: %v", l)
	}
}

func testRunningThroughDisable(t *testing.T) {
	enabled(t)
	mustDocker(t, "volume", "create", "-d", plugin, "-o", "size=64MiB", "st2")
	run(t, "cst2", "st2")
	mustDocker(t, "exec", "cst2", "sh", "-c", "echo before > /data/f")
	mustDocker(t, "plugin", "disable", "-f", plugin)
	// dockerd leaves the container running on its bind of the volume.
	if out := mustDocker(t, "inspect", "--format", "{{.State.Running}}", "cst2"); out != "true" {
		t.Fatalf("container running after plugin disable -f: %s", out)
	}
	mustDocker(t, "exec", "cst2", "sh", "-c", "echo during >> /data/f")
	mustDocker(t, "plugin", "enable", plugin)
	if out := mustDocker(t, "exec", "cst2", "sh", "-c", "echo after >> /data/f && sync && cat /data/f"); out != "before\nduring\nafter" {
		t.Errorf("the container reads %q after the plugin came back", out)
	}
	waitFor(t, "st2 to be mounted again for its container", 10*time.Second, func() bool { return len(volumeMounts("st2")) > 0 })
	attached(t, "st2")
	_, err := suite.docker("volume", "rm", "st2")
	if err == nil || !strings.Contains(err.Error(), "in use") {
		t.Errorf("volume rm while a container uses it: %v; want in use", err)
	}
	// What dockerd refuses itself the plugin must refuse too: the operator
	// CLI asks the plugin directly.
	_, err = rexrayErr("volume", "rm", "st2")
	if err == nil || !strings.Contains(err.Error(), "in use by 1 container mount(s)") {
		t.Errorf("rexray volume rm while a container uses it: %v; want in use by 1 container mount(s)", err)
	}
	if out := mustDocker(t, "exec", "cst2", "sh", "-c", "echo later >> /data/f && sync && tail -n 1 /data/f"); out != "later" {
		t.Errorf("the container reads %q after the refused removals", out)
	}
	mustDocker(t, "stop", "-t", "1", "cst2")
	mustDocker(t, "rm", "cst2")
	released(t, "st2")
	if out := mustDocker(t, "run", "--rm", "-v", "st2:/data", "busybox", "cat", "/data/f"); out != "before\nduring\nafter\nlater" {
		t.Errorf("data after the container stopped: %q", out)
	}
	mustDocker(t, "volume", "rm", "st2")
}

func testImageDeleted(t *testing.T) {
	mustDocker(t, "volume", "create", "-d", plugin, "-o", "size=64MiB", "stimg1")
	detachDeleted(t, "stimg1")
	run(t, "cstimg1", "stimg1")
	if err := os.Remove(suite.image("stimg1")); err != nil {
		t.Fatal(err)
	}
	mustDocker(t, "rm", "-f", "cstimg1")
	waitFor(t, "the deleted image's loop device to go", 10*time.Second, func() bool { return len(loopsOfDeleted("stimg1")) == 0 })
	if m := volumeMounts("stimg1"); len(m) != 0 {
		t.Errorf("still mounted: %v", m)
	}
	mustDocker(t, "volume", "rm", "stimg1")
}

func testImageDeletedWhileDisabled(t *testing.T) {
	enabled(t)
	mustDocker(t, "volume", "create", "-d", plugin, "-o", "size=64MiB", "stimg2")
	detachDeleted(t, "stimg2")
	run(t, "cstimg2", "stimg2")
	mustDocker(t, "plugin", "disable", "-f", plugin)
	if err := os.Remove(suite.image("stimg2")); err != nil {
		t.Fatal(err)
	}
	mustDocker(t, "rm", "-f", "cstimg2")
	mustDocker(t, "plugin", "enable", plugin)
	waitFor(t, "the deleted image's loop device to go", 10*time.Second, func() bool { return len(loopsOfDeleted("stimg2")) == 0 })
	mustDocker(t, "volume", "rm", "stimg2")
}
