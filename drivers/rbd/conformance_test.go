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

	"github.com/sirupsen/logrus"
	logtest "github.com/sirupsen/logrus/hooks/test"

	"github.com/rexray/rexray/drivers"
	"github.com/rexray/rexray/drivers/drivertest"
	"github.com/rexray/rexray/drivers/rbd/ceph"
	"github.com/rexray/rexray/internal/reqid"
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
	t.Run("CopyListsEachPoolOnce", func(t *testing.T) { testCopyListsEachPoolOnce(t, conformanceHost(t, fusePath, "conform-a")) })
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

// testCopyListsEachPoolOnce: a create from a snapshot, as the engine makes
// it in one call (look for the name, find the snapshot, create, inspect),
// lists each pool at most once and reads the copy's image-meta once: each
// tool run costs a process that joins the cluster (2 s in an emulated VM,
// where a call has 25 s).
func testCopyListsEachPoolOnce(t *testing.T, d *Driver) {
	bg := context.Background()
	if _, err := d.Create(bg, "runs-src", drivers.CreateOptions{Size: 16 << 20}); err != nil {
		t.Fatal(err)
	}
	defer d.Remove(bg, "runs-src")
	if _, err := d.CreateSnapshot(bg, "runs-src", "runs-snap"); err != nil {
		t.Fatal(err)
	}
	defer d.RemoveSnapshot(bg, "runs-snap")
	log, hook := logtest.NewNullLogger()
	log.SetLevel(logrus.DebugLevel)
	ctx := reqid.WithLog(reqid.With(bg, reqid.New()), log)
	if _, err := d.Inspect(ctx, "runs-copy"); !errors.Is(err, drivers.ErrNotFound) {
		t.Fatalf("Inspect of a name not made yet = %v, want not found", err)
	}
	if _, err := d.InspectSnapshot(ctx, "runs-snap"); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Create(ctx, "runs-copy", drivers.CreateOptions{FromSnapshot: "runs-snap"}); err != nil {
		t.Fatal(err)
	}
	defer d.Remove(bg, "runs-copy")
	if v, err := d.Inspect(ctx, "runs-copy"); err != nil || v.Meta.Snapshot != "runs-snap" {
		t.Fatalf("Inspect of the copy = %+v, %v; want it made from runs-snap", v.Meta, err)
	}
	runs := map[string]int{}
	var all []string
	for _, e := range hook.AllEntries() {
		if rest, ok := strings.CutPrefix(e.Message, "ceph tool: "); ok {
			_, line, _ := strings.Cut(rest, ": ")
			all = append(all, line)
			if f := strings.Fields(line); len(f) > 2 && (f[1] == "ls" || f[1] == "image-meta" && f[2] == "list") {
				runs[strings.Join(f[:min(5, len(f))], " ")]++
			}
		}
	}
	for run, n := range runs {
		if n > 1 {
			t.Errorf("%s ran %d times in one call:\n%s", run, n, strings.Join(all, "\n"))
		}
	}
}
