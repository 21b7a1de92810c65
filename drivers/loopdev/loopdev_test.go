package loopdev

import (
	"os"
	"path/filepath"
	"testing"
)

// A device detached while another process still has it open stays bound
// until that process closes it; Bound must not offer it for reuse (a
// Remove right after the Detach took the volume for attached).
func TestDetachedWhileOpenIsNotBound(t *testing.T) {
	img := filepath.Join(t.TempDir(), "v.img")
	if err := os.WriteFile(img, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(img, 1<<20); err != nil {
		t.Fatal(err)
	}
	id, err := IDOf(img)
	if err != nil {
		t.Fatal(err)
	}
	const tag = "rexray:loopdev-test"
	dev, err := Attach(img, tag, false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { Detach(dev) })
	if bound, _ := Bound(tag); bound[id] != dev {
		t.Fatalf("Bound = %v; want %s", bound, dev)
	}

	other, err := os.Open(dev)
	if err != nil {
		t.Fatal(err)
	}
	if err := Detach(dev); err != nil {
		other.Close()
		t.Fatal(err)
	}
	bound, err := Bound(tag)
	if err != nil || bound[id] != "" {
		t.Errorf("Bound while another opener holds the detached %s = %v, %v; want it left out", dev, bound, err)
	}
	other.Close()
	if _, err := os.Lstat("/sys/block/" + filepath.Base(dev) + "/loop"); err == nil {
		t.Errorf("%s still bound after its last close", dev)
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
