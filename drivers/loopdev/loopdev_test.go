//go:build integration

package loopdev

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// A device detached while another process holds it open stays bound until
// that process closes it. Settle waits for that, and tells an attached
// device (no detach asked for) at once.
func TestSettle(t *testing.T) {
	ctx := context.Background()
	img := filepath.Join(t.TempDir(), "v.img")
	if err := os.WriteFile(img, make([]byte, 1<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	id, err := IDOf(img)
	if err != nil {
		t.Fatal(err)
	}
	dev, err := Attach(img, "rexray:loopdev-test", false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if !Settle(ctx, dev, id) { // the number may serve another file by now
			Detach(dev)
		}
	})
	if Settle(ctx, dev, id) {
		t.Fatalf("Settle of the attached %s reports it free", dev)
	}

	other, err := os.Open(dev)
	if err != nil {
		t.Fatal(err)
	}
	if err := Detach(dev); err != nil {
		other.Close()
		t.Fatal(err)
	}
	if bound, _ := Bound("rexray:loopdev-test"); bound[id] != dev {
		other.Close()
		t.Fatalf("%s unbound while another process holds it; Bound = %v", dev, bound)
	}
	time.AfterFunc(50*time.Millisecond, func() { other.Close() })
	if !Settle(ctx, dev, id) {
		t.Errorf("%s still holds the image a second after its other opener closed it", dev)
	}
}

// Bound finds a device from the moment it is attached until it is
// detached, this instance's and untagged ones but not another instance's.
func TestBound(t *testing.T) {
	dir := t.TempDir()
	// A number detached here may serve another test process's file by
	// the end: never detach it twice.
	detached := map[string]bool{}
	attach := func(name, tag string) (FileID, string) {
		id, dev := attachImage(t, dir, name, tag)
		t.Cleanup(func() {
			if !detached[dev] {
				Detach(dev)
			}
		})
		return id, dev
	}
	mine, myDev := attach("mine.img", "rexray:a")
	theirs, _ := attach("theirs.img", "rexray:b")
	plain, plainDev := attach("plain.img", "")

	bound, err := Bound("rexray:a")
	if err != nil {
		t.Fatal(err)
	}
	if bound[mine] != myDev || bound[plain] != plainDev {
		t.Errorf("Bound = %v: want %s for mine and %s for the untagged one", bound, myDev, plainDev)
	}
	if dev, ok := bound[theirs]; ok {
		t.Errorf("Bound lists %s, another instance's", dev)
	}
	names, err := BoundNames()
	if err != nil || names[myDev] != filepath.Join(dir, "mine.img") {
		t.Errorf("BoundNames = %v, %v: want %s for %s", names, err, filepath.Join(dir, "mine.img"), myDev)
	}

	if err := Detach(myDev); err != nil {
		t.Fatal(err)
	}
	detached[myDev] = true
	// Another process's scan may hold the device a moment (see TestSettle).
	if !Settle(context.Background(), myDev, mine) {
		t.Fatalf("%s still bound a second after its detach", myDev)
	}
	if bound, _ := Bound("rexray:a"); bound[mine] != "" {
		t.Errorf("%s still listed after its detach", bound[mine])
	}
}

// BenchmarkBound times the scan every Mount and Unmount makes, over
// whatever loop devices this host has.
func BenchmarkBound(b *testing.B) {
	for b.Loop() {
		if _, err := Bound("rexray:bench"); err != nil {
			b.Fatal(err)
		}
	}
}

// A device whose backing file was deleted is an orphan of the instance that
// tagged it, and of no other; a device whose file is still there is none.
func TestOrphans(t *testing.T) {
	dir := t.TempDir()
	var devs []string
	t.Cleanup(func() {
		for _, dev := range devs {
			Detach(dev)
		}
	})
	attach := func(name, tag string) (FileID, string) {
		id, dev := attachImage(t, dir, name, tag)
		devs = append(devs, dev)
		return id, dev
	}
	gone, goneDev := attach("gone.img", "rexray:a")
	attach("kept.img", "rexray:a")
	attach("theirs.img", "rexray:b")
	attach("plain.img", "")
	for _, name := range []string{"gone.img", "theirs.img", "plain.img"} {
		if err := os.Remove(filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	orphans, err := Orphans("rexray:a")
	if err != nil {
		t.Fatal(err)
	}
	want := []Orphan{{Device: goneDev, File: gone, Name: "gone.img"}}
	if len(orphans) != 1 || orphans[0] != want[0] {
		t.Errorf("Orphans = %+v, want %+v", orphans, want)
	}
	if on, err := gone.OnFilesystemOf(dir); err != nil || !on {
		t.Errorf("OnFilesystemOf(%s) = %v, %v; want true", dir, on, err)
	}
	if on, err := gone.OnFilesystemOf("/proc"); err != nil || on {
		t.Errorf("OnFilesystemOf(/proc) = %v, %v; want false", on, err)
	}
}

// attachImage attaches a new 1 MiB image NAME in dir with tag; the caller
// detaches it.
func attachImage(t *testing.T, dir, name, tag string) (FileID, string) {
	t.Helper()
	img := filepath.Join(dir, name)
	if err := os.WriteFile(img, make([]byte, 1<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	id, err := IDOf(img)
	if err != nil {
		t.Fatal(err)
	}
	dev, err := Attach(img, tag, false)
	if err != nil {
		t.Fatal(err)
	}
	return id, dev
}
