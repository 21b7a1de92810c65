//go:build integration

package integration

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/rexray/rexray/drivers"
	"github.com/rexray/rexray/drivers/rbd"
)

// TestFencedFuseWriteIsNotLost: host t1 writes to a volume attached with
// rbd-fuse, then t2 preempts it, which blocklists t1's Ceph client, then t1
// syncs. The sync may fail, but if it tells t1 its write is on disk, the
// image holds it. The loop device hands a write to rbd-fuse at once and its
// flush apart, so a fence can fall between the two. With librbd's default
// cache policy the write is on its way to the OSDs when it is acknowledged,
// and the fence must fall within milliseconds to catch it; the Ceph settings
// here (a write-back cache holding dirty data for a minute, as a cluster may
// set) keep it from the OSDs until the flush, so that it always does.
func TestFencedFuseWriteIsNotLost(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: FUSE mounts and loop devices")
	}
	if _, err := exec.LookPath("rbd-fuse"); err != nil {
		t.Skip("rbd-fuse is not installed (hack/setup.sh installs it)")
	}
	cephUp(t)
	ctx := context.Background()
	cfg := rbd.Config{DefaultPool: "rbd", Attach: "fuse", FusePath: t.TempDir(), CephArgs: "--rbd_cache_policy=writeback --rbd_cache_max_dirty_age=60"}
	t1, err := rbd.New(cfg, drivers.Settings{InstanceID: "t1"})
	if err != nil {
		t.Fatal(err)
	}
	t2, err := rbd.New(cfg, drivers.Settings{InstanceID: "t2"})
	if err != nil {
		t.Fatal(err)
	}
	const name = "fenced"
	if _, err := t1.Create(ctx, name, drivers.CreateOptions{Size: 64 << 20}); err != nil {
		t.Fatal(err)
	}
	dev1, err := t1.Attach(ctx, name, false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// t2 owns it: t1's detach fences its side.
		if err := t1.Detach(ctx, name); err != nil {
			t.Errorf("detach t1: %v", err)
		}
	})
	f, err := os.OpenFile(dev1, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	before := block("synced before the fence")
	if _, err := f.WriteAt(before, 0); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatalf("sync before the fence: %v", err)
	}

	// O_DIRECT: the write reaches rbd-fuse now, not at the sync.
	direct, err := os.OpenFile(dev1, os.O_WRONLY|unix.O_DIRECT, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer direct.Close()
	pending, err := unix.Mmap(-1, 0, 4096, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_ANON|unix.MAP_PRIVATE)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(pending)
	copy(pending, block("written before the fence, synced after it"))
	const at = 1 << 20
	if _, err := direct.WriteAt(pending, at); err != nil {
		t.Fatal(err)
	}

	if _, err := t2.Attach(ctx, name, true); err != nil {
		t.Fatalf("t2 preempts: %v", err)
	}
	t.Cleanup(func() {
		if err := t2.Detach(ctx, name); err != nil {
			t.Errorf("detach t2: %v", err)
		}
	})
	synced := make(chan error, 1)
	go func() { synced <- direct.Sync() }()
	select {
	case err = <-synced:
	case <-time.After(2 * time.Minute):
		t.Fatal("t1's sync after the fence neither failed nor returned")
	}
	image, xerr := exec.Command("rbd", "export", "rbd/"+name, "-").Output()
	if xerr != nil {
		t.Fatalf("rbd export: %v", xerr)
	}
	if !bytes.Equal(image[:len(before)], before) {
		t.Errorf("the image lacks what t1 synced before it was fenced")
	}
	if err != nil {
		t.Logf("t1's sync after the fence failed, as it may: %v", err)
		return
	}
	if !bytes.Equal(image[at:at+len(pending)], pending) {
		t.Errorf("t1's sync after the fence told it its write is on disk, but the image lacks it")
	}
}

// block is one 4 KiB block filled with s.
func block(s string) []byte {
	return bytes.Repeat([]byte(s+"\n"), 4096/(len(s)+1)+1)[:4096]
}

// cephUp starts a throwaway Ceph cluster for the test (hack/ceph-up.sh)
// and points the Ceph tools at it.
func cephUp(t *testing.T) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "ceph")
	t.Cleanup(func() {
		if _, err := suite.hack("ceph-down.sh", dir); err != nil {
			t.Errorf("ceph-down: %v", err)
		}
	})
	out, err := suite.hack("ceph-up.sh", dir)
	if err != nil {
		t.Fatalf("ceph-up: %v", err)
	}
	t.Setenv("CEPH_CONF", strings.Split(strings.TrimSpace(out), "\n")[0])
}
