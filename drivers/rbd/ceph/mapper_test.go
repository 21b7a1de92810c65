package ceph

import (
	"context"
	"os"
	"path/filepath"
	"slices"
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

// rbd-nbd's mappings are read as `rbd device list` reads them: a connected
// /sys/block/nbdN names its rbd-nbd's pid, whose command line names the
// image; a disconnected device is skipped, a snapshot's mapping is not the
// image's, and a server that is not rbd-nbd leaves it to `rbd device list`.
func TestNbdDevicesFromSysfs(t *testing.T) {
	sys, proc := t.TempDir(), t.TempDir()
	write := func(path, s string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(filepath.Join(sys, "block", "nbd0", "pid"), "101\n")
	write(filepath.Join(proc, "101", "cmdline"), "rbd-nbd\x00map\x00rbd/db\x00--exclusive\x00")
	write(filepath.Join(sys, "block", "nbd1", "size"), "0\n") // not connected
	write(filepath.Join(sys, "block", "nbd2", "pid"), "102\n")
	write(filepath.Join(proc, "102", "cmdline"), "/usr/bin/rbd-nbd\x00--device\x00/dev/nbd2\x00map\x00fast/web@before\x00")
	write(filepath.Join(sys, "block", "nbd3", "pid"), "103\n")
	write(filepath.Join(proc, "103", "cmdline"), "/usr/bin/rbd-nbd\x00map\x00fast/web\x00")
	m := &Mapper{Kind: "nbd", Sys: sys, Proc: proc}
	list, ok := m.nbdList()
	want := []mapped{{Pool: "rbd", Name: "db", Device: "/dev/nbd0"}, {Pool: "fast", Name: "web", Device: "/dev/nbd3"}}
	if !ok || !slices.Equal(list, want) {
		t.Errorf("nbdList = %v, %v; want %v", list, ok, want)
	}
	write(filepath.Join(sys, "block", "nbd4", "pid"), "104\n")
	write(filepath.Join(proc, "104", "cmdline"), "qemu-nbd\x00disk.img\x00")
	if list, ok := m.nbdList(); ok {
		t.Errorf("with a device served by qemu-nbd: nbdList = %v, ok; want it left to rbd device list", list)
	}
}
