//go:build integration

package loopback

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rexray/rexray/drivers"
)

// bait is a file outside the store with data in it, as a host device or
// another program's file would be.
func bait(t *testing.T, size int) (string, []byte) {
	t.Helper()
	data := bytes.Repeat([]byte("not yours "), size/10)
	path := filepath.Join(t.TempDir(), "bait")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path, data
}

// unchanged fails unless path still holds want.
func unchanged(t *testing.T, path string, want []byte) {
	t.Helper()
	got, err := os.ReadFile(path)
	if err != nil || !bytes.Equal(got, want) {
		t.Errorf("%s was changed (%d bytes, %v)", path, len(got), err)
	}
}

// refused fails unless err refuses path for what it is.
func refused(t *testing.T, op string, err error, path, what string) {
	t.Helper()
	if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), what) {
		t.Errorf("%s = %v, want it refused naming %s as %s", op, err, path, what)
	}
}

func symlink(t *testing.T, target, link string) {
	t.Helper()
	os.Remove(link)
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
}

// An image that is a symbolic link, to another volume's image or to any
// file, is never attached, read or copied: the call names the link.
func TestImageSymlinkIsRefused(t *testing.T) {
	ctx := context.Background()
	for _, to := range []string{"another volume's image", "a file outside the store"} {
		t.Run(to, func(t *testing.T) {
			d := newDriver(t)
			for _, n := range []string{"v1", "v2"} {
				if _, err := d.Create(ctx, n, drivers.CreateOptions{Size: 16 * mib, FSType: "ext4"}); err != nil {
					t.Fatal(err)
				}
			}
			target, data := bait(t, 16*mib)
			if to == "another volume's image" {
				target = d.imagePath("v1")
				if err := os.WriteFile(target, data, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			img := d.imagePath("v2")
			symlink(t, target, img)

			_, err := d.Attach(ctx, "v2", false)
			refused(t, "Attach", err, img, "a symbolic link")
			_, err = d.Inspect(ctx, "v2")
			refused(t, "Inspect", err, img, "a symbolic link")
			_, err = d.Blank(ctx, "v2")
			refused(t, "Blank", err, img, "a symbolic link")
			_, err = d.Create(ctx, "copy", drivers.CreateOptions{FromVolume: "v2"})
			refused(t, "Create of a copy", err, img, "a symbolic link")
			_, err = d.CreateSnapshot(ctx, "v2", "s1")
			refused(t, "CreateSnapshot", err, img, "a symbolic link")
			_, err = d.Create(ctx, "v2", drivers.CreateOptions{Size: 16 * mib})
			refused(t, "Create over it", err, img, "a symbolic link")
			if vols, err := d.List(ctx); err != nil || len(vols) != 1 || vols[0].Name != "v1" || vols[0].Device != "" {
				t.Errorf("List = %+v, %v; want v1 alone, detached", vols, err)
			}
			unchanged(t, target, data)
			// Removing the volume removes the link, never its target.
			if err := d.Remove(ctx, "v2"); err != nil {
				t.Fatal(err)
			}
			unchanged(t, target, data)
		})
	}
}

// Metadata and lease files that are links, or not regular files, are
// refused with their path; what they point at is neither read nor written.
func TestRecordSymlinksAreRefused(t *testing.T) {
	ctx := context.Background()
	d := newDriver(t)
	if _, err := d.Create(ctx, "v1", drivers.CreateOptions{Size: 16 * mib, FSType: "ext4"}); err != nil {
		t.Fatal(err)
	}

	// Metadata elsewhere, however valid.
	outside := filepath.Join(t.TempDir(), "v1.json")
	b, _ := os.ReadFile(d.metaPath("v1"))
	os.WriteFile(outside, b, 0o600)
	symlink(t, outside, d.metaPath("v1"))
	_, err := d.Inspect(ctx, "v1")
	refused(t, "Inspect", err, d.metaPath("v1"), "a symbolic link")
	_, err = d.Attach(ctx, "v1", false)
	refused(t, "Attach", err, d.metaPath("v1"), "a symbolic link")
	_, err = d.Create(ctx, "v1", drivers.CreateOptions{Size: 16 * mib})
	refused(t, "Create", err, d.metaPath("v1"), "a symbolic link")
	unchanged(t, outside, b)
	os.Remove(d.metaPath("v1"))
	os.WriteFile(d.metaPath("v1"), b, 0o600)

	// A lease elsewhere: taking it would write through the link.
	target, data := bait(t, 100)
	symlink(t, target, d.leasePath("v1"))
	_, err = d.Attach(ctx, "v1", false)
	refused(t, "Attach with a linked lease", err, d.leasePath("v1"), "a symbolic link")
	unchanged(t, target, data)
	if v, err := d.Inspect(ctx, "v1"); err != nil || v.Device != "" {
		t.Errorf("after the refused Attach: %+v, %v; want v1 detached", v, err)
	}
	os.Remove(d.leasePath("v1"))

	// A FIFO as metadata: reading it would wait forever for a writer.
	if err := syscall.Mkfifo(d.metaPath("v2"), 0o600); err != nil {
		t.Fatal(err)
	}
	inspected := make(chan error, 1)
	go func() {
		_, err := d.Inspect(ctx, "v2")
		inspected <- err
	}()
	select {
	case err = <-inspected:
		refused(t, "Inspect of a FIFO", err, d.metaPath("v2"), "a FIFO")
	case <-time.After(10 * time.Second):
		t.Errorf("Inspect of a volume whose metadata is a FIFO never returned")
		f, _ := os.OpenFile(d.metaPath("v2"), os.O_WRONLY, 0)
		f.Close() // lets it end
	}
	os.Remove(d.metaPath("v2"))

	// A snapshot's metadata elsewhere hides that snapshot, and no more.
	symlink(t, outside, d.snaps.meta("s1"))
	_, err = d.InspectSnapshot(ctx, "s1")
	refused(t, "InspectSnapshot", err, d.snaps.meta("s1"), "a symbolic link")
	if snaps, err := d.Snapshots(ctx); err != nil || len(snaps) != 0 {
		t.Errorf("Snapshots = %v, %v; want none", snaps, err)
	}
	if v, err := d.Inspect(ctx, "v1"); err != nil || v.Name != "v1" {
		t.Errorf("Inspect of a volume beside a linked snapshot record = %+v, %v", v, err)
	}

	// The store's folders themselves.
	os.Rename(d.dir, d.dir+".real")
	symlink(t, d.dir+".real", d.dir)
	_, err = d.Inspect(ctx, "v1")
	refused(t, "Inspect through a linked folder", err, d.dir, "a symbolic link")
	if _, err := New(Config{VolumePath: d.cfg.VolumePath, Instance: "h1"}); err == nil || !strings.Contains(err.Error(), d.dir) {
		t.Errorf("New over a store whose volumes folder is a link = %v, want it refused naming %s", err, d.dir)
	}
}

// The store's root is configuration, and may be a link an administrator
// made.
func TestStoreRootMayBeALink(t *testing.T) {
	ctx := context.Background()
	real := t.TempDir()
	root := filepath.Join(t.TempDir(), "store")
	symlink(t, real, root)
	d, err := New(Config{VolumePath: root, DirectIO: true, Instance: "h1"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Create(ctx, "v1", drivers.CreateOptions{Size: 16 * mib}); err != nil {
		t.Fatal(err)
	}
	dev, err := d.Attach(ctx, "v1", false)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Detach(ctx, "v1"); err != nil || dev == "" {
		t.Fatalf("Detach %s: %v", dev, err)
	}
}
