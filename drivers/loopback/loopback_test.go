//go:build integration

package loopback

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/rexray/rexray/drivers"
	"github.com/rexray/rexray/drivers/loopdev"
)

// newDriver gives a driver over a fresh store; it detaches whatever a
// failing test left attached.
func newDriver(t *testing.T) *Driver {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("loop devices need root")
	}
	d, err := New(Config{VolumePath: t.TempDir(), DirectIO: true, Instance: "h1"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		vols, _ := d.List(context.Background())
		for _, v := range vols {
			if v.Device != "" {
				t.Errorf("%s left attached as %s", v.Name, v.Device)
				loopdev.Detach(v.Device)
			}
		}
	})
	return d
}

func TestLifecycle(t *testing.T) {
	ctx := context.Background()
	d := newDriver(t)
	v, err := d.Create(ctx, "v1", drivers.CreateOptions{Size: 64 * mib, FSType: "ext4", IOPS: 7})
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(d.imagePath("v1"))
	if err != nil || st.Size() != 64*mib {
		t.Fatalf("image: %v, %v; want %d bytes", st, err, 64*mib)
	}
	if _, err := d.Create(ctx, "v1", drivers.CreateOptions{Size: mib}); !errors.Is(err, drivers.ErrExists) {
		t.Errorf("second Create = %v, want ErrExists", err)
	}

	got, err := d.Inspect(ctx, "v1")
	if err != nil || got.IOPS != 7 || got.FSType != "ext4" || !got.CreatedAt.Equal(v.CreatedAt) || got.Device != "" {
		t.Fatalf("Inspect = %+v, %v", got, err)
	}

	dev, err := d.Attach(ctx, "v1", false)
	if err != nil {
		t.Fatal(err)
	}
	again, err := d.Attach(ctx, "v1", false)
	if err != nil || again != dev {
		t.Errorf("second Attach = %s, %v; want the same %s", again, err, dev)
	}
	if err := d.Remove(ctx, "v1"); err == nil {
		t.Error("Remove of an attached volume succeeded")
	}
	vols, err := d.List(ctx)
	if err != nil || len(vols) != 1 || vols[0].Device != dev {
		t.Fatalf("List = %+v, %v; want v1 on %s", vols, err, dev)
	}
	if err := d.Detach(ctx, "v1"); err != nil {
		t.Fatal(err)
	}
	if err := d.Detach(ctx, "v1"); err != nil {
		t.Errorf("second Detach = %v, want nil", err)
	}
	if err := d.Remove(ctx, "v1"); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Inspect(ctx, "v1"); !errors.Is(err, drivers.ErrNotFound) {
		t.Errorf("Inspect after Remove = %v, want ErrNotFound", err)
	}
	if left, _ := os.ReadDir(d.dir); len(left) != 0 {
		t.Errorf("store not empty after Remove: %v", left)
	}
}

// An image without metadata is what a crash inside Create leaves: it is not
// listed, and the next Create of the name reclaims it.
func TestCrashedCreateIsReclaimed(t *testing.T) {
	ctx := context.Background()
	d := newDriver(t)
	if err := os.WriteFile(d.imagePath("half"), []byte("junk"), 0o600); err != nil {
		t.Fatal(err)
	}
	if vols, _ := d.List(ctx); len(vols) != 0 {
		t.Fatalf("half-created volume listed: %v", vols)
	}
	if _, err := d.Create(ctx, "half", drivers.CreateOptions{Size: 8 * mib}); err != nil {
		t.Fatalf("Create over a leftover image: %v", err)
	}
	if st, _ := os.Stat(d.imagePath("half")); st.Size() != 8*mib {
		t.Errorf("reclaimed image is %d bytes", st.Size())
	}
}

func TestRefusesBadNames(t *testing.T) {
	d := newDriver(t)
	for _, n := range []string{"../escape", "a/b", ""} {
		if _, err := d.Create(context.Background(), n, drivers.CreateOptions{Size: mib}); err == nil {
			t.Errorf("Create(%q) succeeded", n)
		}
	}
	if left, _ := os.ReadDir(d.dir); len(left) != 0 {
		t.Errorf("files made for bad names: %v", left)
	}
}

func TestBlank(t *testing.T) {
	ctx := context.Background()
	d := newDriver(t)
	if _, err := d.Create(ctx, "b", drivers.CreateOptions{Size: 8 * mib}); err != nil {
		t.Fatal(err)
	}
	if blank, err := d.Blank(ctx, "b"); !blank || err != nil {
		t.Fatalf("new volume: Blank = %v, %v; want true", blank, err)
	}
	// One block written anywhere, here the last, and it is not blank.
	f, err := os.OpenFile(d.imagePath("b"), os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteAt([]byte{1}, 8*mib-1)
	f.Close()
	if blank, _ := d.Blank(ctx, "b"); blank {
		t.Fatal("written volume reported blank")
	}
}

// Volume images hold users' data: nothing in the store is readable by
// anyone but root.
func TestStoreIsNotWorldReadable(t *testing.T) {
	d := newDriver(t)
	if _, err := d.Create(context.Background(), "secret", drivers.CreateOptions{Size: mib}); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{d.dir, d.imagePath("secret"), d.metaPath("secret")} {
		st, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if perm := st.Mode().Perm(); perm&0o077 != 0 {
			t.Errorf("%s has mode %o: group or others can get in", p, perm)
		}
	}
}

// A Remove or Create killed part way leaves an image without metadata, or a
// metadata temp file, and a host killed while renewing a lease or asking
// for one its temp file; Remove of the name clears them all, and nothing
// of another volume's.
func TestRemoveClearsCrashLeftovers(t *testing.T) {
	ctx := context.Background()
	d := newDriver(t)
	os.WriteFile(d.imagePath("gone"), nil, 0o600)
	os.WriteFile(d.metaTemp("gone"), []byte("{"), 0o600)
	// Another host killed while renewing its lease, or asking for it.
	os.WriteFile(privateTemp(d.dir, "gone", "lease", "host-b"), []byte("{"), 0o600)
	os.WriteFile(privateTemp(d.dir, "gone", "preempt", "host-c"), []byte("{"), 0o600)
	// Another volume's, whose name begins as this one's records do.
	other := privateTemp(d.dir, "gone.lease", "lease", "host-b")
	os.WriteFile(other, []byte("{"), 0o600)
	if err := d.Remove(ctx, "gone"); err != nil {
		t.Fatalf("Remove of leftovers: %v", err)
	}
	if left, _ := os.ReadDir(d.dir); len(left) != 1 || left[0].Name() != filepath.Base(other) {
		t.Errorf("left after Remove: %v, want only %s", left, filepath.Base(other))
	}
	os.Remove(other)
	if err := d.Remove(ctx, "gone"); !errors.Is(err, drivers.ErrNotFound) {
		t.Errorf("Remove of nothing = %v, want ErrNotFound", err)
	}
}

// A new volume is marked unformatted; a copy is not (it carries its
// source's filesystem); RecordFormat keeps the first format in the
// volume's metadata.
func TestFormatRecord(t *testing.T) {
	ctx := context.Background()
	d := newDriver(t)
	v, err := d.Create(ctx, "v1", drivers.CreateOptions{Size: 16 * mib, FSType: "ext4"})
	if err != nil || !v.Unformatted || !v.Formatted.IsZero() {
		t.Fatalf("Create = %+v, %v; want it unformatted", v.Meta, err)
	}
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	if err := d.RecordFormat(ctx, "v1", at); err != nil {
		t.Fatal(err)
	}
	if v, err := d.Inspect(ctx, "v1"); err != nil || v.Unformatted || !v.Formatted.Equal(at) || v.FSType != "ext4" {
		t.Errorf("after RecordFormat: %+v, %v; want formatted at %s", v.Meta, err, at)
	}
	if c, err := d.Create(ctx, "c1", drivers.CreateOptions{FromVolume: "v1"}); err != nil || c.Unformatted {
		t.Errorf("a copy: %+v, %v; want it not marked unformatted", c.Meta, err)
	}
	if err := d.RecordFormat(ctx, "nope", at); !errors.Is(err, drivers.ErrNotFound) {
		t.Errorf("RecordFormat of a missing volume = %v, want not found", err)
	}
}
