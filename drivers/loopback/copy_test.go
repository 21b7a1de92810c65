//go:build integration

package loopback

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/rexray/rexray/drivers"
	"github.com/rexray/rexray/drivers/loopdev"
)

// writeAt puts data into a volume's image at off.
func writeAt(t *testing.T, d *Driver, name string, off int64, data []byte) {
	t.Helper()
	f, err := os.OpenFile(d.imagePath(name), os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(data, off); err != nil {
		t.Fatal(err)
	}
}

// allocated is the disk space a file really takes.
func allocated(t *testing.T, path string) int64 {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	return st.Blocks * 512
}

func checkCopy(t *testing.T, d *Driver) {
	t.Helper()
	ctx := context.Background()
	if _, err := d.Create(ctx, "src", drivers.CreateOptions{Size: 64 * mib, FSType: "ext4"}); err != nil {
		t.Fatal(err)
	}
	a, b := bytes.Repeat([]byte("a"), mib), bytes.Repeat([]byte("b"), mib)
	writeAt(t, d, "src", 0, a)
	writeAt(t, d, "src", 40*mib, b)

	v, err := d.Create(ctx, "cp", drivers.CreateOptions{FromVolume: "src", Size: 128 * mib, FSType: "ext4"})
	if err != nil {
		t.Fatal(err)
	}
	if v.Origin != "src" || v.Size != 128*mib {
		t.Errorf("copy: %+v", v)
	}
	got, err := os.ReadFile(d.imagePath("cp"))
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(got)) != 128*mib || !bytes.Equal(got[:mib], a) || !bytes.Equal(got[40*mib:41*mib], b) ||
		!bytes.Equal(got[mib:40*mib], make([]byte, 39*mib)) {
		t.Fatal("the copy's blocks differ from the source's")
	}
	// Holes stay holes: the copy takes about what the source holds.
	if used := allocated(t, d.imagePath("cp")); used > 4*mib {
		t.Errorf("copy takes %d bytes on disk for 2 MiB of data", used)
	}
}

func TestCopyKeepsBlocksAndHoles(t *testing.T) {
	checkCopy(t, newDriver(t))
}

// On xfs with reflink the copy shares the source's blocks.
func TestCopyReflinks(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("needs root")
	}
	dir := t.TempDir()
	img := filepath.Join(dir, "xfs.img")
	if err := os.WriteFile(img, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	os.Truncate(img, 512*mib)
	if out, err := exec.Command("mkfs.xfs", "-q", "-m", "reflink=1", img).CombinedOutput(); err != nil {
		t.Fatalf("mkfs.xfs: %v: %s", err, out)
	}
	dev, err := loopdev.Attach(img, "", false)
	if err != nil {
		t.Fatal(err)
	}
	defer loopdev.Detach(dev)
	store := filepath.Join(dir, "store")
	os.Mkdir(store, 0o700)
	if err := unix.Mount(dev, store, "xfs", 0, ""); err != nil {
		t.Fatal(err)
	}
	defer unix.Unmount(store, 0)
	d, err := New(Config{VolumePath: store, Instance: "h1"})
	if err != nil {
		t.Fatal(err)
	}
	var before unix.Statfs_t
	unix.Statfs(store, &before)
	checkCopy(t, d)
	writeAt(t, d, "src", 10*mib, bytes.Repeat([]byte("c"), 8*mib))
	var mid unix.Statfs_t
	unix.Statfs(store, &mid)
	if _, err := d.Create(context.Background(), "cp2", drivers.CreateOptions{FromVolume: "src", FSType: "ext4"}); err != nil {
		t.Fatal(err)
	}
	var after unix.Statfs_t
	unix.Statfs(store, &after)
	// 10 MiB of data copied; a reflink takes next to none of it.
	if grew := int64(mid.Bfree-after.Bfree) * mid.Bsize; grew > mib {
		t.Errorf("a reflinked copy of 10 MiB took %d bytes", grew)
	}
}

// A copy past its deadline stops and leaves no image behind.
func TestCopyHonoursDeadline(t *testing.T) {
	d := newDriver(t)
	if _, err := d.Create(context.Background(), "src", drivers.CreateOptions{Size: 8 * mib}); err != nil {
		t.Fatal(err)
	}
	writeAt(t, d, "src", 0, []byte("data"))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := d.Create(ctx, "cp", drivers.CreateOptions{FromVolume: "src"})
	if err == nil || !errors.Is(err, context.Canceled) {
		t.Fatalf("copy with a spent deadline = %v", err)
	}
	for _, p := range []string{d.imagePath("cp"), d.metaPath("cp")} {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("%s left: %v", p, err)
		}
	}
}
