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

// BenchmarkBound times the scan every Mount and Unmount makes, over
// whatever loop devices this host has.
func BenchmarkBound(b *testing.B) {
	for b.Loop() {
		if _, err := Bound("rexray:bench"); err != nil {
			b.Fatal(err)
		}
	}
}
