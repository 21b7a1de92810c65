//go:build integration

package plugin

import (
	"context"
	"strings"
	"testing"
)

// The operator's attach holds a volume like a container does: a container's
// last unmount leaves it attached, detach refuses while containers use it,
// and a restarted plugin keeps it attached without mounting it.
func TestOperatorAttachIsAHold(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	r.create("v", map[string]string{"size": "32MiB"})
	info, err := r.p.Attach(ctx, "v")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(info.Device, "/dev/loop") || info.Mountpoint != "" {
		t.Fatalf("after attach: device %q, mountpoint %q", info.Device, info.Mountpoint)
	}
	r.mount("v", "c1")
	if err := r.p.Detach(ctx, "v"); err == nil || !strings.Contains(err.Error(), "in use by 1 mount(s)") {
		t.Errorf("detach under a container = %v", err)
	}
	r.unmount("v", "c1")
	r.restart()
	info, err = r.p.Volume(ctx, "v")
	if err != nil {
		t.Fatal(err)
	}
	if info.Device == "" || info.Mountpoint != "" {
		t.Errorf("after the container and a restart: device %q, mountpoint %q; want attached, not mounted", info.Device, info.Mountpoint)
	}
	if err := r.p.UnmountVolume(ctx, "v"); err == nil || !strings.Contains(err.Error(), "not mounted by rexray volume mount") {
		t.Errorf("operator unmount of a volume it did not mount = %v", err)
	}
	if err := r.p.Detach(ctx, "v"); err != nil {
		t.Fatal(err)
	}
	if info, _ := r.p.Volume(ctx, "v"); info.Device != "" || len(info.MountIDs) != 0 {
		t.Errorf("after detach: %+v", info)
	}
	if err := r.p.Detach(ctx, "nope"); err == nil || !strings.Contains(err.Error(), "volume not found") {
		t.Errorf("detach of a missing volume = %v", err)
	}
}

func TestOperatorMount(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	if _, err := r.p.MountVolume(ctx, "nope"); err == nil || !strings.Contains(err.Error(), "volume not found") {
		t.Errorf("operator mount of a missing volume = %v; it must not create one", err)
	}
	r.create("v", map[string]string{"size": "32MiB"})
	info, err := r.p.MountVolume(ctx, "v")
	if err != nil {
		t.Fatal(err)
	}
	if info.Mountpoint != r.mnt.Path("v") || len(info.MountIDs) != 1 || info.MountIDs[0] != "rexray-cli-mount" {
		t.Errorf("after mount: %+v", info)
	}
	if err := r.p.UnmountVolume(ctx, "v"); err != nil {
		t.Fatal(err)
	}
	if r.held("v") {
		t.Error("still mounted after the operator's unmount")
	}
}
