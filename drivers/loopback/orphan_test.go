//go:build integration

package loopback

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/rexray/rexray/drivers"
	"github.com/rexray/rexray/drivers/loopdev"
	"github.com/rexray/rexray/mount"
)

// boundTo tells whether dev still serves the (deleted) file id.
func boundTo(t *testing.T, dev string, id loopdev.FileID) bool {
	t.Helper()
	orphans, err := loopdev.Orphans(loopdev.Tag("host-a"))
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range orphans {
		if o.Device == dev && o.File == id {
			return true
		}
	}
	return false
}

// orphan creates and attaches a volume, then deletes its image (and, with
// meta, its metadata) behind the driver's back, as someone with write
// access to the store may. The device is detached at the end whatever
// happens.
func orphan(t *testing.T, d *Driver, name string, meta bool) (string, loopdev.FileID) {
	t.Helper()
	ctx := context.Background()
	if _, err := d.Create(ctx, name, drivers.CreateOptions{Size: 64 * mib}); err != nil {
		t.Fatal(err)
	}
	dev, err := d.Attach(ctx, name, false)
	if err != nil {
		t.Fatal(err)
	}
	id, err := loopdev.IDOf(d.imagePath(name))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if boundTo(t, dev, id) {
			loopdev.Detach(dev)
		}
	})
	if err := os.Remove(d.imagePath(name)); err != nil {
		t.Fatal(err)
	}
	if meta {
		if err := os.Remove(d.metaPath(name)); err != nil {
			t.Fatal(err)
		}
	}
	return dev, id
}

func hostDriver(t *testing.T, store, instance string) *Driver {
	t.Helper()
	d, err := New(Config{VolumePath: store, DirectIO: true, Instance: instance})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// Detach finds the device of a volume whose image was deleted, which no
// path leads to any more, and lets it go; with the metadata gone too it
// still does, and says the volume is not found.
func TestDetachOfADeletedImage(t *testing.T) {
	ctx := context.Background()
	d := hostDriver(t, t.TempDir(), "host-a")
	dev, id := orphan(t, d, "v1", false)
	if err := d.Detach(ctx, "v1"); err != nil {
		t.Fatal(err)
	}
	if boundTo(t, dev, id) {
		t.Errorf("%s still bound to the deleted image of v1 after Detach", dev)
	}

	dev, id = orphan(t, d, "v2", true)
	if err := d.Detach(ctx, "v2"); !errors.Is(err, drivers.ErrNotFound) {
		t.Errorf("Detach of v2 without metadata = %v, want not found", err)
	}
	if boundTo(t, dev, id) {
		t.Errorf("%s still bound to the deleted image of v2 after Detach", dev)
	}
}

// DetachOrphans leaves a device whose filesystem is still mounted (it goes
// at its last unmount), another volume's, and another instance's.
func TestDetachOrphans(t *testing.T) {
	ctx := context.Background()
	store := t.TempDir()
	d := hostDriver(t, store, "host-a")
	other := hostDriver(t, store, "host-b")

	free, freeID := orphan(t, d, "free", true)
	listed, listedID := orphan(t, d, "listed", false)
	mounted, mountedID := orphan(t, d, "mounted", false)
	theirs, err := other.Create(ctx, "theirs", drivers.CreateOptions{Size: 64 * mib})
	if err != nil {
		t.Fatal(err)
	}
	theirDev, err := other.Attach(ctx, theirs.Name, false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { loopdev.Detach(theirDev) })
	if err := os.Remove(other.imagePath(theirs.Name)); err != nil {
		t.Fatal(err)
	}

	if err := mount.Format(ctx, mounted, "ext4", true); err != nil {
		t.Fatal(err)
	}
	target := filepath.Join(t.TempDir(), "m")
	os.Mkdir(target, 0o700)
	if err := unix.Mount(mounted, target, "ext4", 0, ""); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Unmount(target, unix.MNT_DETACH) })

	orphans, err := d.DetachOrphans(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]drivers.Orphan{
		"free":    {Volume: "free", Device: free},
		"listed":  {Volume: "listed", Device: listed},
		"mounted": {Volume: "mounted", Device: mounted, Mounted: true},
	}
	if len(orphans) != len(want) {
		t.Errorf("DetachOrphans = %+v, want %v", orphans, want)
	}
	for _, o := range orphans {
		if want[o.Volume] != o {
			t.Errorf("DetachOrphans reports %+v, want %+v", o, want[o.Volume])
		}
	}
	if boundTo(t, free, freeID) || boundTo(t, listed, listedID) {
		t.Error("an orphan nothing mounts is still bound")
	}
	if !boundTo(t, mounted, mountedID) {
		t.Errorf("%s detached while its filesystem is mounted", mounted)
	}
	if orphans, _ := loopdev.Orphans(loopdev.Tag("host-b")); len(orphans) != 1 || orphans[0].Device != theirDev {
		t.Errorf("another instance's orphans: %+v, want %s kept", orphans, theirDev)
	}

	if err := unix.Unmount(target, 0); err != nil {
		t.Fatal(err)
	}
	if err := d.Detach(ctx, "mounted"); err != nil {
		t.Fatal(err)
	}
	if boundTo(t, mounted, mountedID) {
		t.Errorf("%s still bound after its last unmount and Detach", mounted)
	}
}
