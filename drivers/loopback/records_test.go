package loopback

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/rexray/rexray/drivers"
)

// storeRecords are the records of hosts a and b on one fresh store.
func storeRecords(t *testing.T) (a, b records) {
	t.Helper()
	root := t.TempDir()
	dir := filepath.Join(root, "volumes")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	return records{root: root, dir: dir, instance: "a"}, records{root: root, dir: dir, instance: "b"}
}

// Another host's create between linking its image and writing its
// metadata is told from a crashed create's leftover by its private link
// to the image, on a store without user xattrs (NFSv3) as with them.
func TestCreateInProgressIsSeenWithoutXattrs(t *testing.T) {
	ctx := context.Background()
	a, b := storeRecords(t)
	f, err := a.build("x", func(f *os.File) error { return f.Truncate(1 << 20) })
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := a.place(ctx, "x", f.Name(), drivers.ErrExists); err != nil {
		t.Fatal(err)
	}
	if _, fresh := a.othersFresh("x"); fresh {
		t.Error("a takes its own create for another host's")
	}
	creator, fresh := b.othersFresh("x")
	if !fresh {
		t.Fatal("b takes a's create in progress for a leftover")
	}
	t.Logf("b names the creator %q", creator)
	// As on a store without user xattrs.
	unix.Removexattr(a.image("x"), creatorXattr)
	if creator, fresh := b.othersFresh("x"); !fresh || creator != "another host" {
		t.Fatalf("without the xattr, b sees a's create in progress as %q, %v; want another host's, in progress", creator, fresh)
	}
	// A crashed create's image, older than creatingGrace, is a leftover.
	old := time.Now().Add(-creatingGrace - time.Minute)
	if err := os.Chtimes(a.image("x"), old, old); err != nil {
		t.Fatal(err)
	}
	if _, fresh := b.othersFresh("x"); fresh {
		t.Error("b waits for a create older than creatingGrace")
	}
	// Once a's private link is gone, nothing marks it.
	os.Chtimes(a.image("x"), time.Now(), time.Now())
	os.Remove(f.Name())
	if _, fresh := b.othersFresh("x"); fresh {
		t.Error("b waits for an image no host's private link marks")
	}
}

// claim keeps its private link to the image until the metadata is
// written, and removes it after; a failed commit leaves no image.
func TestClaimKeepsItsMarkUntilCommitted(t *testing.T) {
	ctx := context.Background()
	a, b := storeRecords(t)
	fill := func(f *os.File) error { return f.Truncate(1 << 20) }
	err := a.claim(ctx, "x", drivers.ErrExists, fill, func() error {
		if _, fresh := b.othersFresh("x"); !fresh {
			t.Error("while a commits, b does not see a's create in progress")
		}
		return a.write("x", map[string]string{"name": "x"})
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(a.imageTemp("x")); !os.IsNotExist(err) {
		t.Errorf("a's private link after the claim: %v; want it gone", err)
	}
	if err := b.claim(ctx, "x", drivers.ErrExists, fill, func() error { return nil }); !errors.Is(err, drivers.ErrExists) {
		t.Errorf("b's claim of a committed record = %v, want ErrExists", err)
	}
	err = a.claim(ctx, "y", drivers.ErrExists, fill, func() error { return os.ErrPermission })
	if !errors.Is(err, os.ErrPermission) {
		t.Errorf("claim with a failing commit = %v", err)
	}
	if left, _ := filepath.Glob(filepath.Join(a.dir, "*y*")); len(left) != 0 {
		t.Errorf("a failed commit left %v", left)
	}
}

// A lock held elsewhere (as an NFS server in its grace period holds every
// new one) costs a build at most lockWait, not the caller's deadline.
func TestFlockWithinGivesUpInTime(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f")
	holder, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close()
	if err := unix.Flock(int(holder.Fd()), unix.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := flockWithin(f, unix.LOCK_EX, 50*time.Millisecond); !errors.Is(err, errLockLate) {
		t.Fatalf("flockWithin while another holds the lock = %v, want errLockLate", err)
	}
	f.Close()
	// The late lock went with the file: the holder's release leaves it free.
	unix.Flock(int(holder.Fd()), unix.LOCK_UN)
	g, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		err := flockWithin(g, unix.LOCK_EX|unix.LOCK_NB, time.Second)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the lock, 5s after both let go: %v", err)
		}
	}
}
