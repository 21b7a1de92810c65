//go:build integration

package loopback

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/rexray/rexray/drivers"
	"github.com/rexray/rexray/drivers/drivertest"
	"github.com/rexray/rexray/drivers/loopdev"
	"github.com/rexray/rexray/mount"
)

// Two hosts are two instances on one store folder, with real loop
// devices: it needs root.
func TestConformance(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("loop devices need root")
	}
	drivertest.Run(t, drivertest.Harness{
		Hosts: func(t *testing.T) (a, b drivers.Driver) {
			store := t.TempDir()
			return conformanceHost(t, store, "conform-a"), conformanceHost(t, store, "conform-b")
		},
		CheckDevice: func(t *testing.T, host drivers.Driver, dev string) {
			st, err := os.Stat(dev)
			if err != nil || st.Mode()&os.ModeDevice == 0 || st.Mode()&os.ModeCharDevice != 0 {
				t.Errorf("device %s: %v, mode %v; want a block device", dev, err, st.Mode())
			}
		},
		DeviceSize: mount.DeviceSize,
	})
}

// conformanceHost is instance's driver on store. Whatever a failed test
// left attached is detached at its end, after the suite's own clean-up.
func conformanceHost(t *testing.T, store, instance string) *Driver {
	d, err := New(Config{VolumePath: store, DirectIO: true, LeaseTTL: 3 * time.Second, Instance: instance})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		vols, _ := d.List(context.Background())
		for _, v := range vols {
			if v.Device != "" {
				t.Errorf("%s: %s left attached as %s", instance, v.Name, v.Device)
				loopdev.Detach(v.Device)
			}
		}
	})
	return d
}
