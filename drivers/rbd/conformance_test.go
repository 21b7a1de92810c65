//go:build integration

package rbd

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rexray/rexray/drivers"
	"github.com/rexray/rexray/drivers/drivertest"
	"github.com/rexray/rexray/drivers/rbd/ceph"
	"github.com/rexray/rexray/mount"
)

// The suite against a real Ceph: a throwaway cluster started for the test
// with hack/ceph-up.sh, as the integration suite starts its own, and two
// instances attaching with rbd-fuse and loop devices (this kernel has no
// rbd or nbd), which needs root.
func TestConformance(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("FUSE mounts and loop devices need root")
	}
	if _, err := exec.LookPath("rbd-fuse"); err != nil {
		t.Fatal("rbd-fuse is missing: run hack/setup.sh")
	}
	cephUp(t)
	fusePath := t.TempDir()
	drivertest.Run(t, drivertest.Harness{
		Hosts: func(t *testing.T) (a, b drivers.Driver) {
			return conformanceHost(t, fusePath, "conform-a"), conformanceHost(t, fusePath, "conform-b")
		},
		CheckDevice: func(t *testing.T, host drivers.Driver, dev string) {
			st, err := os.Stat(dev)
			if err != nil || st.Mode()&os.ModeDevice == 0 || st.Mode()&os.ModeCharDevice != 0 {
				t.Errorf("device %s: %v; want a block device", dev, err)
			}
		},
		DeviceSize: mount.DeviceSize,
	})
	t.Run("ExpandAttached", func(t *testing.T) { testExpandAttached(t, conformanceHost(t, fusePath, "conform-a")) })
	// Every subtest removed what it made: nothing is left in the pool, not
	// even the image of a removed volume whose snapshots are gone.
	out, err := ceph.Tools{}.Run(context.Background(), "rbd", "ls", "-p", "rbd")
	if err != nil || strings.TrimSpace(string(out)) != "" {
		t.Errorf("images left in the pool: %q, %v", out, err)
	}
}

// cephUp starts a cluster for the test and points the Ceph tools at it.
func cephUp(t *testing.T) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "ceph")
	t.Cleanup(func() {
		if out, err := exec.Command("../../hack/ceph-down.sh", dir).CombinedOutput(); err != nil {
			t.Errorf("ceph-down: %v: %s", err, out)
		}
	})
	cmd := exec.Command("../../hack/ceph-up.sh", dir)
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("ceph-up: %v", err)
	}
	t.Setenv("CEPH_CONF", strings.Split(strings.TrimSpace(string(out)), "\n")[0])
}

// conformanceHost is instance's driver. What a failed test left attached
// is fenced at its end, after the suite's own clean-up, so that no
// rbd-fuse outlives the cluster.
func conformanceHost(t *testing.T, fusePath, instance string) *Driver {
	d, err := New(Config{DefaultPool: "rbd", Attach: "fuse", FusePath: fusePath, LockCheck: time.Second}, drivers.Settings{InstanceID: instance})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		imgs, err := d.att.Attached()
		if err != nil {
			t.Errorf("%s: %v", instance, err)
		}
		for _, pi := range imgs {
			t.Errorf("%s: %s left attached", instance, strings.Join(pi[:], "/"))
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			if err := d.att.Fence(ctx, pi[0], pi[1]); err != nil {
				t.Errorf("%s: fence %s: %v", instance, pi[1], err)
			}
			cancel()
		}
	})
	return d
}

// testExpandAttached: growing a volume attached here through rbd-fuse
// grows its loop device at once, while it stays attached.
func testExpandAttached(t *testing.T, d *Driver) {
	ctx := context.Background()
	if _, err := d.Create(ctx, "grow1", drivers.CreateOptions{Size: 16 << 20, FSType: "ext4"}); err != nil {
		t.Fatal(err)
	}
	defer d.Remove(ctx, "grow1")
	dev, err := d.Attach(ctx, "grow1", false)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Detach(ctx, "grow1")
	v, err := d.Expand(ctx, "grow1", 32<<20)
	if err != nil || v.Size != 32<<20 {
		t.Fatalf("Expand = %d bytes, %v", v.Size, err)
	}
	if n, err := mount.DeviceSize(dev); err != nil || n != 32<<20 {
		t.Errorf("device %s after Expand: %d bytes, %v; want 32 MiB", dev, n, err)
	}
	if _, err := d.Expand(ctx, "grow1", 16<<20); !errors.Is(err, drivers.ErrInvalid) {
		t.Errorf("shrink: %v, want ErrInvalid", err)
	}
}
