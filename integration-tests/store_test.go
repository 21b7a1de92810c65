//go:build integration

package integration

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestStoreTrust: what the store holds is input. On the real dockerd, a
// copy killed part way leaves no volume behind and is made again, and a
// damaged filesystem is refused, never formatted, and recovered.
func TestStoreTrust(t *testing.T) {
	ensurePlugin(t)
	t.Run("CopyKilledPartWay", testCopyKilled)
	t.Run("DamagedFilesystem", testDamagedFilesystem)
}

// allocatedBytes is how much data a file holds, 0 if it is not there.
func allocatedBytes(path string) int64 {
	var st syscall.Stat_t
	if syscall.Stat(path, &st) != nil {
		return 0
	}
	return st.Blocks * 512
}

// copyTemps are the temp images of a copy of name in the store.
func copyTemps(name string) []string {
	temps, _ := filepath.Glob(filepath.Join(suite.volumesDir(), "."+name+".img.*.tmp"))
	return temps
}

// testCopyKilled kills the plugin (SIGKILL) while `docker volume create -o
// volumeName=` copies 768 MiB, then makes the same create again.
func testCopyKilled(t *testing.T) {
	mustDocker(t, "volume", "create", "-d", plugin, "-o", "size=1GiB", "big")
	defer suite.docker("volume", "rm", "big")
	mustDocker(t, "run", "--rm", "-v", "big:/data", "busybox", "sh", "-c",
		"dd if=/dev/zero of=/data/fill bs=1M count=768 && echo marker > /data/m && sync")
	released(t, "big")

	m := pluginNow(t)
	created := make(chan error, 1)
	go func() {
		_, err := suite.docker("volume", "create", "-d", plugin, "-o", "volumeName=big", "half")
		created <- err
	}()
	// Half way: some of the data is copied, wherever the copy is made.
	waitFor(t, "the copy to be under way", 60*time.Second, func() bool {
		for _, p := range append(copyTemps("half"), suite.image("half")) {
			if allocatedBytes(p) > 64<<20 {
				return true
			}
		}
		return false
	})
	pid := m.pid(t)
	syscall.Kill(pid, syscall.SIGKILL)
	m.answering(t, pid)
	err := <-created
	t.Logf("the create cut off by the kill answered: %v", err)
	if err != nil && !strings.Contains(err.Error(), "running the same create again is safe") {
		t.Errorf("the create cut off by the kill = %v; want it to say that running it again is safe", err)
	}
	if err == nil {
		t.Fatal("the create cut off by the kill succeeded; the test killed nothing half way")
	}
	if _, err := os.Stat(suite.image("half")); err == nil {
		if _, err := os.Stat(filepath.Join(suite.volumesDir(), "half.json")); err != nil {
			t.Errorf("half.img is in the store without metadata after the kill")
		}
	}
	if temps := copyTemps("half"); len(temps) != 0 {
		t.Errorf("the killed copy left %v after the plugin started again", temps)
	}
	if out, _ := suite.docker("volume", "ls", "-q"); strings.Contains(out, "half") {
		t.Errorf("volume ls lists %q after a create that failed", out)
	}

	mustDocker(t, "volume", "create", "-d", plugin, "-o", "volumeName=big", "half")
	defer suite.docker("volume", "rm", "half")
	if out := mustDocker(t, "run", "--rm", "-v", "half:/data", "busybox", "cat", "/data/m"); out != "marker" {
		t.Errorf("the copy made again holds %q, want the source's marker", out)
	}
	released(t, "half")
}

// testDamagedFilesystem zeroes a volume's primary ext4 superblock after
// its first use: the next container fails with a message saying how to
// check and start over, and e2fsck from a backup superblock gets the data
// back.
func testDamagedFilesystem(t *testing.T) {
	mustDocker(t, "volume", "create", "-d", plugin, "-o", "size=256MiB", "hurt")
	defer suite.docker("volume", "rm", "hurt")
	mustDocker(t, "run", "--rm", "-v", "hurt:/data", "busybox", "sh", "-c", "echo precious > /data/keep")
	released(t, "hurt")
	f, err := os.OpenFile(suite.image("hurt"), os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteAt(make([]byte, 1024), 1024) // ext4's primary superblock
	f.Close()

	_, err = suite.docker("run", "--rm", "-v", "hurt:/data", "busybox", "cat", "/data/keep")
	t.Logf("docker run on the damaged volume: %v", err)
	for _, want := range []string{"hurt", "/dev/loop", "holds no filesystem that can be recognised", "not formatted again", "e2fsck", "docker volume rm hurt"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("docker run on a damaged volume = %v; want it to say %q", err, want)
		}
	}
	released(t, "hurt")

	out, err := exec.Command("mke2fs", "-n", "-F", suite.image("hurt")).CombinedOutput()
	backup := regexp.MustCompile(`Superblock backups stored on blocks:\s*(\d+)`).FindSubmatch(out)
	if err != nil || backup == nil {
		t.Fatalf("mke2fs -n: %v: %s", err, out)
	}
	out, err = exec.Command("e2fsck", "-fy", "-b", string(backup[1]), suite.image("hurt")).CombinedOutput()
	if ee, ok := err.(*exec.ExitError); err != nil && (!ok || ee.ExitCode() > 1) {
		t.Fatalf("e2fsck -b %s: %v: %s", backup[1], err, out)
	}
	if out := mustDocker(t, "run", "--rm", "-v", "hurt:/data", "busybox", "cat", "/data/keep"); out != "precious" {
		t.Errorf("after e2fsck -b %s the volume holds %q, want the file back", backup[1], out)
	}
	released(t, "hurt")
}
