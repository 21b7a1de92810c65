//go:build integration

package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/docker/docker/api/types/volume"
)

// testShape: volumes shaped by their create options, as a user of the
// plugin on a real dockerd sees them.
func testShape(t *testing.T) {
	t.Run("OwnerAndMode", testOwnerAndMode)
	t.Run("UsedAndFree", testUsedAndFree)
	t.Run("Overcommit", testOvercommit)
	t.Run("MkfsAndMountOptions", testFSOptions)
	t.Run("ResizeWhileInUse", testResize)
}

// fieldsOf is a volume's Status fields, as docker volume inspect shows.
func fieldsOf(t *testing.T, name string) map[string]any {
	t.Helper()
	v, err := suite.cli.VolumeInspect(ctx(t), name)
	if err != nil {
		t.Fatal(err)
	}
	f, _ := v.Status["fields"].(map[string]any)
	return f
}

// rmVolume removes a test's volume however the test ended.
func rmVolume(t *testing.T, name string) {
	t.Cleanup(func() { suite.docker("volume", "rm", "-f", name) })
}

// testOwnerAndMode: a volume created with uid, gid and mode hands its
// container a data folder that user owns and can write, others cannot;
// Status shows them; bits beyond permissions are refused, leaving nothing.
func testOwnerAndMode(t *testing.T) {
	rmVolume(t, "owned")
	mustDocker(t, "volume", "create", "-d", plugin, "-o", "size=64MiB", "-o", "uid=1000", "-o", "gid=1001", "-o", "mode=0750", "owned")
	if got := mustDocker(t, "run", "--rm", "-v", "owned:/vol", "busybox", "stat", "-c", "%u:%g %a", "/vol"); got != "1000:1001 750" {
		t.Errorf("data folder %q, want 1000:1001 750", got)
	}
	if out, err := suite.docker("run", "--rm", "--user", "1000:1001", "-v", "owned:/vol", "busybox", "sh", "-c", "echo mine > /vol/f && cat /vol/f"); err != nil || out != "mine" {
		t.Errorf("write as uid 1000: %q, %v", out, err)
	}
	if _, err := suite.docker("run", "--rm", "--user", "2000:2000", "-v", "owned:/vol", "busybox", "touch", "/vol/g"); err == nil || !strings.Contains(err.Error(), "Permission denied") {
		t.Errorf("write as uid 2000 into a 0750 folder of 1000:1001: %v, want Permission denied", err)
	}
	f := fieldsOf(t, "owned")
	if f["uid"] != "1000" || f["gid"] != "1001" || f["mode"] != "0750" {
		t.Errorf("Status fields %v: want uid 1000, gid 1001, mode 0750", f)
	}
	rmVolume(t, "plain")
	mustDocker(t, "volume", "create", "-d", plugin, "-o", "size=64MiB", "plain")
	if f := fieldsOf(t, "plain"); f["uid"] != "0" || f["mode"] != "0700" {
		t.Errorf("Status fields of a volume made without them %v: want uid 0, mode 0700", f)
	}

	before := storeFiles(t)
	for opt, want := range map[string]string{
		"mode=4750": "setuid, setgid and sticky bits are refused",
		"mode=rwx":  "in octal",
		"uid=-1":    "from 0 to 4294967294",
	} {
		_, err := suite.cli.VolumeCreate(ctx(t), volume.CreateOptions{Name: "badowner", Driver: plugin, DriverOpts: map[string]string{strings.Split(opt, "=")[0]: strings.Split(opt, "=")[1]}})
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("create with %s: %v, want an error saying %q", opt, err, want)
		}
	}
	if after := storeFiles(t); strings.Join(after, ",") != strings.Join(before, ",") {
		t.Errorf("store changed by refused creates: before %v, after %v", before, after)
	}
	released(t, "owned")
}

// testUsedAndFree: while a container has written 32 MiB, docker volume
// inspect shows the filesystem's used and free bytes, as df in the
// container does, and rexray volume ls shows them; unmounted, neither.
func testUsedAndFree(t *testing.T) {
	rmVolume(t, "filled")
	mustDocker(t, "volume", "create", "-d", plugin, "-o", "size=256MiB", "filled")
	mustDocker(t, "run", "-d", "--name", "filler", "-v", "filled:/vol", "busybox", "sh", "-c", "dd if=/dev/urandom of=/vol/f bs=1M count=32 && sync && touch /vol/done && sleep 600")
	defer suite.docker("rm", "-f", "filler")
	waitFor(t, "the writer", 20*time.Second, func() bool {
		_, err := suite.docker("exec", "filler", "test", "-f", "/vol/done")
		return err == nil
	})
	f := fieldsOf(t, "filled")
	used, _ := strconv.ParseInt(fmt.Sprint(f["used"]), 10, 64)
	free, _ := strconv.ParseInt(fmt.Sprint(f["free"]), 10, 64)
	if used < 32<<20 || used > 64<<20 || free < 150<<20 || used+free > 256<<20 {
		t.Errorf("fields used %v, free %v: want at least 32 MiB used and the rest of 256 MiB about free", f["used"], f["free"])
	}
	df := strings.Fields(mustDocker(t, "exec", "filler", "sh", "-c", "df -k /vol | tail -n 1"))
	if len(df) < 4 || df[2] != strconv.FormatInt(used/1024, 10) || df[3] != strconv.FormatInt(free/1024, 10) {
		t.Errorf("df in the container %v; want used %d KiB and available %d KiB, as Status says", df, used/1024, free/1024)
	}
	ls := rexray(t, "volume", "ls")
	if !strings.Contains(ls, "USED") || !strings.Contains(ls, "FREE") {
		t.Errorf("rexray volume ls has no USED and FREE columns:\n%s", ls)
	}
	for _, line := range strings.Split(ls, "\n") {
		if cols := strings.Fields(line); len(cols) > 4 && cols[0] == "filled" && (cols[3] == "-" || cols[4] == "-") {
			t.Errorf("rexray volume ls shows no USED or FREE for the mounted volume: %q", line)
		}
	}
	mustDocker(t, "rm", "-f", "filler")
	released(t, "filled")
	if f := fieldsOf(t, "filled"); f["used"] != nil || f["free"] != nil {
		t.Errorf("fields of an unmounted volume %v: want no used or free", f)
	}
}

// testOvercommit: a volume larger than the store's free space is created
// with a warning in the plugin's log that gives the figures; with
// LOOPBACK_OVERCOMMIT=false it is refused with them, and nothing is left.
func testOvercommit(t *testing.T) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(suite.store, &st); err != nil {
		t.Fatal(err)
	}
	free := int64(st.Bavail) * st.Bsize
	size := fmt.Sprintf("%dMiB", free>>20+1024)
	rmVolume(t, "overcommitted")
	mustDocker(t, "volume", "create", "-d", plugin, "-o", "size="+size, "overcommitted")
	waitFor(t, "the overcommit warning in the plugin's log", 10*time.Second, func() bool {
		b, _ := os.ReadFile(filepath.Join(suite.dir, "d", "dockerd.log"))
		return strings.Contains(string(b), "the store is overcommitted") && strings.Contains(string(b), "volume=overcommitted")
	})
	mustDocker(t, "volume", "rm", "overcommitted")

	setEnv(t, "LOOPBACK_OVERCOMMIT=false")
	defer setEnv(t, "LOOPBACK_OVERCOMMIT=true")
	before := storeFiles(t)
	_, err := suite.docker("volume", "create", "-d", plugin, "-o", "size="+size, "refused")
	if err == nil || !strings.Contains(err.Error(), "not enough room in the store") || !strings.Contains(err.Error(), "free") || !strings.Contains(err.Error(), "LOOPBACK_OVERCOMMIT=false") {
		t.Errorf("create beyond the store's room with LOOPBACK_OVERCOMMIT=false: %v; want a refusal with the figures", err)
	}
	if after := storeFiles(t); strings.Join(after, ",") != strings.Join(before, ",") {
		t.Errorf("store changed by a refused create: before %v, after %v", before, after)
	}
	rmVolume(t, "fits")
	mustDocker(t, "volume", "create", "-d", plugin, "-o", "size=64MiB", "fits")
}

// testFSOptions: mkfsopts shape the filesystem the first mount makes and
// mountopts the mount a container gets, both kept in the volume's record
// in the store, which every host reads; options off the allowlists are
// refused with what is accepted, leaving nothing.
func testFSOptions(t *testing.T) {
	rmVolume(t, "tuned")
	mustDocker(t, "volume", "create", "-d", plugin, "-o", "size=64MiB", "-o", "mkfsopts=-m 0 -L tuned -i 65536", "-o", "mountopts=noatime,discard", "tuned")
	mounts := mustDocker(t, "run", "--rm", "-v", "tuned:/vol", "busybox", "grep", " /vol ", "/proc/mounts")
	opts := strings.Split(strings.Fields(mounts)[3], ",")
	if !slices.Contains(opts, "noatime") || !slices.Contains(opts, "discard") || !slices.Contains(opts, "rw") {
		t.Errorf("the container's mount of the volume: %q, want rw, noatime and discard", mounts)
	}
	if out, err := runCmd("dumpe2fs", "-h", suite.image("tuned")); err != nil ||
		!regexp.MustCompile(`Filesystem volume name:\s+tuned\n`).MatchString(out) || !regexp.MustCompile(`Reserved block count:\s+0\n`).MatchString(out) || !regexp.MustCompile(`Inode count:\s+1024\n`).MatchString(out) {
		t.Errorf("filesystem made: %v\n%s\nwant label tuned, no reserved blocks, 1024 inodes (64 MiB / 65536)", err, out)
	}
	record, err := os.ReadFile(filepath.Join(suite.volumesDir(), "tuned.json"))
	if err != nil || !strings.Contains(string(record), `"mountOpts": [`) || !strings.Contains(string(record), `"-L",`) {
		t.Errorf("the volume's record in the store lacks its options: %v\n%s", err, record)
	}
	if f := fieldsOf(t, "tuned"); f["mkfsOpts"] != "-m 0 -L tuned -i 65536" || f["mountOpts"] != "noatime,discard" {
		t.Errorf("Status fields %v: want mkfsOpts and mountOpts", f)
	}

	rmVolume(t, "readonly")
	mustDocker(t, "volume", "create", "-d", plugin, "-o", "size=64MiB", "-o", "mountopts=ro", "readonly")
	if _, err := suite.docker("run", "--rm", "-v", "readonly:/vol", "busybox", "touch", "/vol/f"); err == nil || !strings.Contains(err.Error(), "Read-only file system") {
		t.Errorf("write into a mountopts=ro volume: %v, want Read-only file system", err)
	}

	before := storeFiles(t)
	for opt, want := range map[string]string{
		"mountopts=noatime,nobarrier": `mount option "nobarrier" is not accepted for ext4: accepted are discard,`,
		"mkfsopts=-E nodiscard":       `mkfs option "-E" is not accepted for ext4: accepted are -I, -L, -N, -O, -b, -i, -m`,
		"mkfsopts=-L $(reboot)":       "a label of up to 16",
		"mkfsopts=-m 1 /dev/sda":      `"/dev/sda" is not accepted`,
	} {
		k, v, _ := strings.Cut(opt, "=")
		_, err := suite.cli.VolumeCreate(ctx(t), volume.CreateOptions{Name: "badfs", Driver: plugin, DriverOpts: map[string]string{k: v}})
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("create with %s: %v, want an error saying %q", opt, err, want)
		}
	}
	if after := storeFiles(t); strings.Join(after, ",") != strings.Join(before, ",") {
		t.Errorf("store changed by refused creates: before %v, after %v", before, after)
	}
	released(t, "tuned")
	released(t, "readonly")
}

// dfKiB is the size of the filesystem at /vol in a running container, as
// df shows it.
func dfKiB(t *testing.T, container string) int64 {
	t.Helper()
	f := strings.Fields(mustDocker(t, "exec", container, "sh", "-c", "df -k /vol | tail -n 1"))
	if len(f) < 2 {
		t.Fatalf("df: %v", f)
	}
	n, _ := strconv.ParseInt(f[1], 10, 64)
	return n
}

// testResize: rexray volume resize grows a volume a running container
// uses: df in the container shows the new size without a restart, the
// data stays, Status size follows; shrinking is refused; a volume grown
// while unmounted has its filesystem grown at its next mount. Online it
// is xfs: ext4's online growth needs CAP_SYS_RESOURCE, which root lacks
// on this machine; ext4 grows offline at the next mount.
func testResize(t *testing.T) {
	rmVolume(t, "growing")
	mustDocker(t, "volume", "create", "-d", plugin, "-o", "size=320MiB", "-o", "fstype=xfs", "growing")
	mustDocker(t, "run", "-d", "--name", "grower", "-v", "growing:/vol", "busybox", "sh", "-c", "echo kept > /vol/f; sleep 600")
	defer suite.docker("rm", "-f", "grower")
	waitFor(t, "the container", 20*time.Second, func() bool {
		_, err := suite.docker("exec", "grower", "test", "-f", "/vol/f")
		return err == nil
	})
	before := dfKiB(t, "grower")
	start := time.Now()
	rexray(t, "volume", "resize", "growing", "1GiB")
	took := time.Since(start)
	after := dfKiB(t, "grower")
	t.Logf("df in the running container: %d KiB before, %d KiB after resize to 1GiB (took %s)", before, after, took)
	if before > 320<<10 || after < 900<<10 || after > 1<<20 {
		t.Errorf("df before %d KiB, after %d KiB: want about 320 MiB, then about 1 GiB", before, after)
	}
	if out := mustDocker(t, "exec", "grower", "cat", "/vol/f"); out != "kept" {
		t.Errorf("data after the resize: %q", out)
	}
	// The new room is writable.
	mustDocker(t, "exec", "grower", "dd", "if=/dev/zero", "of=/vol/big", "bs=1M", "count=500")
	v, err := suite.cli.VolumeInspect(ctx(t), "growing")
	if err != nil || v.Status["size"] != 1.0 {
		t.Errorf("Status size %v, %v; want 1 (GB)", v.Status["size"], err)
	}
	if st, err := os.Stat(suite.image("growing")); err != nil || st.Size() != 1<<30 {
		t.Errorf("image %v, %v; want 1 GiB", st, err)
	}
	if _, err := rexrayErr("volume", "resize", "growing", "512MiB"); err == nil || !strings.Contains(err.Error(), "shrinking is refused") {
		t.Errorf("shrink: %v, want refused", err)
	}
	mustDocker(t, "rm", "-f", "grower")
	released(t, "growing")

	// An ext4 volume grown while no host has it mounted: its next mount
	// grows it.
	rmVolume(t, "growing4")
	mustDocker(t, "volume", "create", "-d", plugin, "-o", "size=128MiB", "growing4")
	mustDocker(t, "run", "--rm", "-v", "growing4:/vol", "busybox", "sh", "-c", "echo kept > /vol/f")
	rexray(t, "volume", "resize", "growing4", "1GiB")
	out := mustDocker(t, "run", "--rm", "-v", "growing4:/vol", "busybox", "sh", "-c", "cat /vol/f; df -k /vol | tail -n 1")
	lines := strings.Split(out, "\n")
	if len(lines) != 2 || lines[0] != "kept" {
		t.Fatalf("after an offline resize: %q", out)
	}
	if kb, _ := strconv.ParseInt(strings.Fields(lines[1])[1], 10, 64); kb < 900<<10 {
		t.Errorf("df after an offline resize to 1 GiB and a mount: %d KiB", kb)
	}
	released(t, "growing4")
}
