package ceph

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

// krbd's mappings are read from sysfs as the kernel lays them out: an
// image's mapping is found with its /dev/rbdN, a snapshot's mapping is not
// the image's, and a kernel without the rbd module has none.
func TestKrbdDevicesFromSysfs(t *testing.T) {
	sys := t.TempDir()
	m := &Mapper{Kind: "krbd", Sys: sys}
	if dev, err := m.Device(context.Background(), "rbd", "db"); err != nil || dev != "" {
		t.Fatalf("no rbd module: Device = %q, %v; want none", dev, err)
	}
	for id, attrs := range map[string][3]string{
		"0": {"rbd", "db", "-"},
		"1": {"fast", "web", "-"},
		"3": {"rbd", "web", "before"},
	} {
		d := filepath.Join(sys, "bus", "rbd", "devices", id)
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		for i, name := range []string{"pool", "name", "current_snap"} {
			if err := os.WriteFile(filepath.Join(d, name), []byte(attrs[i]+"\n"), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, c := range []struct{ pool, image, want string }{
		{"rbd", "db", "/dev/rbd0"},
		{"fast", "web", "/dev/rbd1"},
		{"rbd", "web", ""},
		{"fast", "db", ""},
	} {
		if dev, err := m.Device(context.Background(), c.pool, c.image); err != nil || dev != c.want {
			t.Errorf("Device(%s/%s) = %q, %v; want %q", c.pool, c.image, dev, err, c.want)
		}
	}
	imgs, err := m.Attached()
	if err != nil || len(imgs) != 2 {
		t.Errorf("Attached = %v, %v; want rbd/db and fast/web", imgs, err)
	}
}
