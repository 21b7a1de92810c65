//go:build integration

package loopback

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/rexray/rexray/drivers"
	"github.com/rexray/rexray/mount"
)

// TestGrowthByAnotherHost: host B grows a volume host A holds attached;
// A's loop device takes the new size within growthEvery and A is told,
// so its filesystem can follow. Shrinking is refused on either host.
func TestGrowthByAnotherHost(t *testing.T) {
	store := t.TempDir()
	a, b := conformanceHost(t, store, "grow-a"), conformanceHost(t, store, "grow-b")
	ctx := context.Background()
	if _, err := a.Create(ctx, "g", drivers.CreateOptions{Size: 16 << 20, FSType: "ext4"}); err != nil {
		t.Fatal(err)
	}
	dev, err := a.Attach(ctx, "g", false)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Detach(ctx, "g")
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	grown := make(chan string, 4)
	go a.WatchGrowth(wctx, func(name string) { grown <- name })

	if v, err := b.Expand(ctx, "g", 64<<20); err != nil || v.Size != 64<<20 || v.Device != "" {
		t.Fatalf("B: Expand = %+v, %v", v, err)
	}
	select {
	case name := <-grown:
		if name != "g" {
			t.Errorf("grown %q, want g", name)
		}
	case <-time.After(3 * growthEvery):
		t.Fatal("A was not told of the growth")
	}
	if n, err := mount.DeviceSize(dev); err != nil || n != 64<<20 {
		t.Errorf("A's device %s: %d bytes, %v; want 64 MiB", dev, n, err)
	}
	if _, err := a.Expand(ctx, "g", 32<<20); !errors.Is(err, drivers.ErrInvalid) {
		t.Errorf("shrink: %v, want ErrInvalid", err)
	}
}
