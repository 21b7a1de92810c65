//go:build integration

package mount

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/rexray/rexray/drivers/loopdev"
	"github.com/rexray/rexray/mount/mounttest"
)

// device attaches a fresh sparse image as a loop device for the test.
func device(t *testing.T, size int64) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("mounting needs root")
	}
	img := filepath.Join(t.TempDir(), "t.img")
	if err := os.WriteFile(img, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(img, size); err != nil {
		t.Fatal(err)
	}
	dev, err := loopdev.Attach(img, loopdev.Tag("mount-test"), false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { loopdev.Detach(dev) })
	return dev
}

func TestMountFormatsOnceAndKeepsData(t *testing.T) {
	for _, fs := range []string{"ext4", "xfs"} {
		t.Run(fs, func(t *testing.T) {
			ctx := context.Background()
			dev := device(t, 300*mib)
			m := &Mounter{Root: t.TempDir(), DataDir: "/data", DataMode: 0o700}
			t.Cleanup(func() { m.Unmount(ctx, "v") })

			path, err := m.Mount(ctx, dev, "v", Spec{FSType: fs, Content: Unknown})
			if err != nil {
				t.Fatal(err)
			}
			if path != filepath.Join(m.Root, "v", "data") {
				t.Errorf("path %s", path)
			}
			st, err := os.Stat(path)
			if err != nil || st.Mode().Perm() != 0o700 {
				t.Fatalf("data dir: %v, %v; want mode 0700", st, err)
			}
			if got, _ := Probe(ctx, dev); got != fs {
				t.Errorf("Probe = %q, want %s", got, fs)
			}
			if again, err := m.Mount(ctx, dev, "v", Spec{FSType: fs, Content: Unknown}); err != nil || again != path {
				t.Errorf("second Mount = %s, %v", again, err)
			}
			os.WriteFile(filepath.Join(path, "f"), []byte("kept"), 0o600)

			if err := m.Unmount(ctx, "v"); err != nil {
				t.Fatal(err)
			}
			if ok, _ := m.IsMounted("v"); ok {
				t.Fatal("still mounted after Unmount")
			}
			if _, err := m.Mount(ctx, dev, "v", Spec{FSType: fs, Content: Unknown}); err != nil {
				t.Fatal(err)
			}
			if b, err := os.ReadFile(filepath.Join(path, "f")); string(b) != "kept" {
				t.Errorf("after remount read %q, %v: data lost", b, err)
			}
			m.Unmount(ctx, "v")

			// overwrite formats even over a filesystem.
			if _, err := m.Mount(ctx, dev, "v", Spec{FSType: fs, Content: Discard}); err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(filepath.Join(path, "f")); !os.IsNotExist(err) {
				t.Errorf("overwrite kept the old file: %v", err)
			}
		})
	}
}

func TestUnmountNotMounted(t *testing.T) {
	m := &Mounter{Root: t.TempDir(), DataDir: "/data"}
	if err := m.Unmount(context.Background(), "nothing"); err != nil {
		t.Errorf("Unmount of a volume never mounted = %v", err)
	}
}

func TestProbeEmptyAndFormatErrors(t *testing.T) {
	ctx := context.Background()
	dev := device(t, 16*mib)
	if got, err := Probe(ctx, dev); got != "" || err != nil {
		t.Errorf("Probe of a blank device = %q, %v", got, err)
	}
	if err := Format(ctx, dev, "btrfs-ish", false); err == nil {
		t.Error("Format with an unknown type succeeded")
	}
	// mkfs.xfs refuses 16 MiB; the error must carry what it said.
	err := Format(ctx, dev, "xfs", false)
	if err == nil {
		t.Fatal("xfs on 16 MiB succeeded")
	}
	if msg := err.Error(); len(msg) < len("format : mkfs.xfs: exit status 1")+len(dev)+5 {
		t.Errorf("error %q does not carry mkfs's explanation", msg)
	}
}

// A signature this package does not make (here swap) is found by blkid and
// never formatted over without overwrite.
func TestProbeFallsBackToBlkid(t *testing.T) {
	ctx := context.Background()
	dev := device(t, 16*mib)
	if _, err := run(ctx, "mkswap", dev); err != nil {
		t.Fatal(err)
	}
	if got, err := Probe(ctx, dev); got != "swap" || err != nil {
		t.Fatalf("Probe = %q, %v; want swap", got, err)
	}
	m := &Mounter{Root: t.TempDir(), DataDir: "/data"}
	if _, err := m.Mount(ctx, dev, "v", Spec{FSType: "ext4", Content: Unknown}); err == nil {
		m.Unmount(ctx, "v")
		t.Fatal("mounted a swap device as a volume")
	}
	if got, _ := Probe(ctx, dev); got != "swap" {
		t.Errorf("after a refused mount the device holds %q, want swap untouched", got)
	}
}

func TestExt3MountsThroughExt4(t *testing.T) {
	ctx := context.Background()
	dev := device(t, 32*mib)
	m := &Mounter{Root: t.TempDir(), DataDir: "/data", DataMode: 0o700}
	if _, err := m.Mount(ctx, dev, "v", Spec{FSType: "ext3", Content: Unknown}); err != nil {
		t.Fatal(err)
	}
	defer m.Unmount(ctx, "v")
	if out, _ := run(ctx, "blkid", "-p", "-s", "TYPE", "-o", "value", dev); strings.TrimSpace(out) != "ext3" {
		t.Errorf("blkid says %q, want ext3", out)
	}
}

// A new sparse image reads as zeros, and Zeros formats it without zeroing
// inode tables or the journal again: the filesystem must still check clean,
// keep what is written, and leave the kernel no inode table to zero later.
func TestZerosMakesACleanFilesystem(t *testing.T) {
	checks := map[string][]string{
		"ext4": {"e2fsck", "-f", "-n"},
		"ext3": {"e2fsck", "-f", "-n"},
		"xfs":  {"xfs_repair", "-n"},
	}
	for fs, check := range checks {
		t.Run(fs, func(t *testing.T) {
			ctx := context.Background()
			dev := device(t, 300*mib)
			m := &Mounter{Root: t.TempDir(), DataDir: "/data", DataMode: 0o700}
			t.Cleanup(func() { m.Unmount(ctx, "v") })
			path, err := m.Mount(ctx, dev, "v", Spec{FSType: fs, Content: Zeros})
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(path, "f"), []byte("kept"), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := m.Unmount(ctx, "v"); err != nil {
				t.Fatal(err)
			}
			if out, err := run(ctx, check[0], append(check[1:], dev)...); err != nil {
				t.Fatalf("%s after a Zeros format: %v\n%s", check[0], err, out)
			}
			// ext3 has no group checksums, so no lazy zeroing to avoid.
			if fs == "ext4" {
				out, err := run(ctx, "dumpe2fs", dev)
				if err != nil {
					t.Fatal(err)
				}
				groups := len(regexp.MustCompile(`(?m)^Group \d+:`).FindAllString(out, -1))
				if zeroed := strings.Count(out, "ITABLE_ZEROED"); groups == 0 || zeroed != groups {
					t.Errorf("%d of %d groups have ITABLE_ZEROED: the kernel would zero the rest while containers run", zeroed, groups)
				}
			}
			if _, err := m.Mount(ctx, dev, "v", Spec{FSType: fs, Content: Unknown}); err != nil {
				t.Fatal(err)
			}
			if b, err := os.ReadFile(filepath.Join(path, "f")); string(b) != "kept" {
				t.Errorf("after remount read %q, %v", b, err)
			}
		})
	}
}

// A device that must hold a filesystem and holds none is refused, and
// nothing is written to it.
func TestExistingFormatsNothing(t *testing.T) {
	ctx := context.Background()
	dev := device(t, 16*mib)
	m := &Mounter{Root: t.TempDir(), DataDir: "/data", DataMode: 0o700}
	t.Cleanup(func() { m.Unmount(ctx, "v") })
	_, err := m.Mount(ctx, dev, "v", Spec{FSType: "ext4", Content: Existing})
	var nofs *NoFilesystemError
	if !errors.As(err, &nofs) || nofs.Device != dev || !strings.Contains(err.Error(), dev) {
		t.Errorf("Mount(Existing) of an empty device = %v, want a NoFilesystemError naming %s", err, dev)
	}
	if got, _ := Probe(ctx, dev); got != "" {
		t.Errorf("the device was formatted as %s", got)
	}
	if ok, _ := m.IsMounted("v"); ok {
		t.Errorf("mounted")
	}
}

// A filesystem mounted only in another mount namespace (a container's bind
// of a volume's folder) keeps its device busy; once that namespace's mount ends, it
// is free. Both filesystems the plugin makes behave alike.
func TestBusyAcrossMountNamespaces(t *testing.T) {
	for _, fs := range []string{"ext4", "xfs"} {
		t.Run(fs, func(t *testing.T) {
			ctx := context.Background()
			dev := device(t, 300*mib)
			m := &Mounter{Root: t.TempDir(), DataDir: "/data", DataMode: 0o700}
			t.Cleanup(func() { m.Unmount(ctx, "v") })
			if busy, err := Busy(dev); err != nil || busy {
				t.Fatalf("Busy of an unmounted device = %v, %v", busy, err)
			}
			if _, err := m.Mount(ctx, dev, "v", Spec{FSType: fs, Content: Unknown}); err != nil {
				t.Fatal(err)
			}
			if busy, err := Busy(dev); err != nil || !busy {
				t.Fatalf("Busy of a mounted device = %v, %v", busy, err)
			}
			other := mounttest.Bind(t, m.Path("v"))
			if err := m.Unmount(ctx, "v"); err != nil {
				t.Fatal(err)
			}
			if busy, err := Busy(dev); err != nil || !busy {
				t.Errorf("Busy while another namespace mounts it = %v, %v; want busy", busy, err)
			}
			other.Stop()
			if busy, err := Busy(dev); err != nil || busy {
				t.Errorf("Busy after the other namespace ended = %v, %v; want free", busy, err)
			}
		})
	}
	if _, err := Busy("/nonexistent/dev"); err == nil || !strings.Contains(err.Error(), "/nonexistent/dev") {
		t.Errorf("Busy of a missing device = %v; want an error naming it", err)
	}
}

// TestOwnerAndMode: the first mount makes the data folder with the
// owner and mode asked for, in a sub-folder or at the volume's root; a
// later mount keeps what a user changed since.
func TestOwnerAndMode(t *testing.T) {
	for _, dataDir := range []string{"/data", ""} {
		t.Run("datadir="+dataDir, func(t *testing.T) {
			ctx := context.Background()
			dev := device(t, 64*mib)
			m := &Mounter{Root: t.TempDir(), DataDir: dataDir, DataMode: 0o700}
			t.Cleanup(func() { m.Unmount(ctx, "v") })
			spec := Spec{FSType: "ext4", Content: Zeros, Owner: Owner{UID: 1000, GID: 100, Mode: 0o750}}
			path, err := m.Mount(ctx, dev, "v", spec)
			if err != nil {
				t.Fatal(err)
			}
			if got := ownerOf(t, path); got != "1000:100 0750" {
				t.Errorf("data folder %s, want 1000:100 0750", got)
			}
			if err := os.Chmod(path, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(path, "f"), nil, 0o644); err != nil {
				t.Fatal(err)
			}
			if err := m.Unmount(ctx, "v"); err != nil {
				t.Fatal(err)
			}
			spec.Content = Existing
			if path, err = m.Mount(ctx, dev, "v", spec); err != nil {
				t.Fatal(err)
			}
			if got := ownerOf(t, path); got != "1000:100 0755" {
				t.Errorf("data folder after a user's chmod and a second mount: %s, want 1000:100 0755", got)
			}
		})
	}
}

func ownerOf(t *testing.T, path string) string {
	t.Helper()
	st, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	sys := st.Sys().(*syscall.Stat_t)
	return fmt.Sprintf("%d:%d %04o", sys.Uid, sys.Gid, uint32(st.Mode().Perm()))
}

// TestMkfsAndMountOptions: the volume's mkfs options shape the
// filesystem made, its mount options the mount, and ro still lets the
// first mount make the data folder.
func TestMkfsAndMountOptions(t *testing.T) {
	ctx := context.Background()
	dev := device(t, 64*mib)
	m := &Mounter{Root: t.TempDir(), DataDir: "/data", DataMode: 0o700}
	t.Cleanup(func() { m.Unmount(ctx, "v") })
	spec := Spec{FSType: "ext4", Content: Zeros, MkfsOpts: []string{"-m", "0", "-L", "shaped"}, MountOpts: []string{"noatime", "ro"}}
	path, err := m.Mount(ctx, dev, "v", spec)
	if err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(path); err != nil || !st.IsDir() {
		t.Fatalf("data folder of a ro volume: %v, %v", st, err)
	}
	out, err := run(ctx, "blkid", "-p", "-s", "LABEL", "-o", "value", dev)
	if err != nil || strings.TrimSpace(out) != "shaped" {
		t.Errorf("label %q, %v; want shaped", out, err)
	}
	if out, err := run(ctx, "dumpe2fs", "-h", dev); err != nil || !regexp.MustCompile(`Reserved block count:\s+0\n`).MatchString(out) {
		t.Errorf("with -m 0 no block is reserved for root: %v\n%s", err, out)
	}
	var st unix.Statfs_t
	if err := unix.Statfs(m.Target("v"), &st); err != nil || st.Flags&unix.ST_NOATIME == 0 || st.Flags&unix.ST_RDONLY == 0 {
		t.Errorf("mount flags %#x, %v; want noatime and read-only", st.Flags, err)
	}
	if err := os.WriteFile(filepath.Join(path, "f"), nil, 0o600); !errors.Is(err, unix.EROFS) {
		t.Errorf("write into a ro volume: %v, want EROFS", err)
	}

	if err := m.Unmount(ctx, "v"); err != nil {
		t.Fatal(err)
	}
	spec.Content, spec.MountOpts = Existing, []string{"nobarrier"}
	if _, err := m.Mount(ctx, dev, "v", spec); err == nil || !strings.Contains(err.Error(), `"nobarrier" is not accepted`) {
		t.Errorf("a record with nobarrier: %v, want it refused", err)
	}
	if mounted, _ := m.IsMounted("v"); mounted {
		t.Error("mounted after a refused option")
	}
}

// Halt stops a mounted filesystem's writes at once: what was fsync'd
// before is kept, a later write's fsync fails, and Fence still unmounts it.
func TestHaltStopsWritesAtOnce(t *testing.T) {
	ctx := context.Background()
	dev := device(t, 64*mib)
	m := &Mounter{Root: t.TempDir(), DataDir: "/data", DataMode: 0o700}
	t.Cleanup(func() { m.Unmount(ctx, "v") })
	path, err := m.Mount(ctx, dev, "v", Spec{FSType: "ext4", Content: Unknown})
	if err != nil {
		t.Fatal(err)
	}
	appendSync := func(line string) error {
		f, err := os.OpenFile(filepath.Join(path, "log"), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
		if err != nil {
			return err
		}
		defer f.Close()
		if _, err := f.WriteString(line + "\n"); err != nil {
			return err
		}
		return f.Sync()
	}
	if err := appendSync("before"); err != nil {
		t.Fatal(err)
	}
	if err := m.Halt("v"); err != nil {
		t.Fatal(err)
	}
	if err := appendSync("after"); err == nil {
		t.Error("a write after Halt was synced")
	}
	if err := m.Fence(ctx, "v"); err != nil {
		t.Fatal(err)
	}
	if ok, _ := m.IsMounted("v"); ok {
		t.Fatal("still mounted after Fence")
	}
	if _, err := m.Mount(ctx, dev, "v", Spec{FSType: "ext4", Content: Unknown}); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(path, "log")); string(b) != "before\n" {
		t.Errorf("after Halt and a mount again the log holds %q, want the line synced before", b)
	}
	if err := m.Halt("w"); err != nil {
		t.Errorf("Halt of a volume not mounted: %v", err)
	}
}
