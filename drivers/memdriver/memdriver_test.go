package memdriver

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/rexray/rexray/drivers"
	"github.com/rexray/rexray/drivers/drivertest"
)

func TestConformance(t *testing.T) {
	drivertest.Run(t, drivertest.Harness{
		Hosts: func(t *testing.T) (a, b drivers.Driver) {
			s := NewStore()
			return s.Driver("a"), s.Driver("b")
		},
		CheckDevice: func(t *testing.T, host drivers.Driver, dev string) {
			if want := "/dev/memdriver/" + host.(*Driver).instance + "/"; !strings.HasPrefix(dev, want) {
				t.Errorf("device %s is not under %s", dev, want)
			}
		},
	})
}

// What the fake OS side writes makes a volume, and its copies, not blank.
func TestWrite(t *testing.T) {
	ctx := context.Background()
	s := NewStore()
	d := s.Driver("a")
	if _, err := d.Create(ctx, "v", drivers.CreateOptions{Size: 1}); err != nil {
		t.Fatal(err)
	}
	if err := s.Write("v"); err != nil {
		t.Fatal(err)
	}
	if _, err := d.CreateSnapshot(ctx, "v", "s"); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Create(ctx, "c", drivers.CreateOptions{FromSnapshot: "s"}); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"v", "c"} {
		if blank, err := d.Blank(ctx, name); err != nil || blank {
			t.Errorf("Blank(%s) after a write = %v, %v; want false", name, blank, err)
		}
	}
	if err := s.Write("nope"); !errors.Is(err, drivers.ErrNotFound) {
		t.Errorf("Write of a missing volume = %v, want ErrNotFound", err)
	}
}

// What volumes and snapshots take is capacity gone.
func TestCapacity(t *testing.T) {
	ctx := context.Background()
	s := NewStore()
	s.SetCapacity(100)
	d := s.Driver("a")
	if _, err := d.Create(ctx, "v", drivers.CreateOptions{Size: 30}); err != nil {
		t.Fatal(err)
	}
	if _, err := d.CreateSnapshot(ctx, "v", "s"); err != nil {
		t.Fatal(err)
	}
	if n, err := s.Driver("b").Capacity(ctx); n != 40 || err != nil {
		t.Errorf("Capacity = %d, %v; want 40 (100 less a 30-byte volume and its snapshot)", n, err)
	}
}
