//go:build integration

package csi

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	spec "github.com/container-storage-interface/spec/lib/go/csi"
	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// On real loop devices: a volume made xfs by its capability is mounted as
// xfs at its target, read-only where asked; a block publication is the
// device itself; unpublished, the targets are gone and the device free.
func TestPublishOnRealDevices(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("the loopback driver needs root: loop devices, mkfs and mounts")
	}
	dir := t.TempDir()
	conn, err := grpc.NewClient("unix://"+serveLoopback(t, dir), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctl, node := spec.NewControllerClient(conn), spec.NewNodeClient(conn)
	ctx := context.Background()
	xfs := mountCap(spec.VolumeCapability_AccessMode_SINGLE_NODE_WRITER, "xfs")
	for name, c := range map[string]*spec.VolumeCapability{"x": xfs, "b": blockCap()} {
		if _, err := ctl.CreateVolume(ctx, &spec.CreateVolumeRequest{Name: name, VolumeCapabilities: []*spec.VolumeCapability{c},
			CapacityRange: &spec.CapacityRange{RequiredBytes: 300 << 20}}); err != nil {
			t.Fatal(err)
		}
		if _, err := node.NodeStageVolume(ctx, &spec.NodeStageVolumeRequest{VolumeId: name, StagingTargetPath: filepath.Join(dir, "staged-"+name), VolumeCapability: c}); err != nil {
			t.Fatal(err)
		}
	}
	rw, ro, dev := filepath.Join(dir, "rw"), filepath.Join(dir, "ro"), filepath.Join(dir, "dev")
	for target, readOnly := range map[string]bool{rw: false, ro: true} {
		if _, err := node.NodePublishVolume(ctx, &spec.NodePublishVolumeRequest{VolumeId: "x", TargetPath: target, VolumeCapability: xfs, Readonly: readOnly}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := node.NodePublishVolume(ctx, &spec.NodePublishVolumeRequest{VolumeId: "b", TargetPath: dev, VolumeCapability: blockCap()}); err != nil {
		t.Fatal(err)
	}

	mounts, err := mountinfo.GetMounts(mountinfo.SingleEntryFilter(rw))
	if err != nil || len(mounts) != 1 || mounts[0].FSType != "xfs" {
		t.Fatalf("at %s: %v, %v; want an xfs mount", rw, mounts, err)
	}
	if err := os.WriteFile(filepath.Join(rw, "f"), []byte("data"), 0o600); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(ro, "f")); string(b) != "data" || err != nil {
		t.Errorf("read through the read-only publication: %q, %v", b, err)
	}
	if err := os.WriteFile(filepath.Join(ro, "g"), nil, 0o600); !errors.Is(err, unix.EROFS) {
		t.Errorf("write through the read-only publication: %v, want EROFS", err)
	}
	if st, err := os.Stat(dev); err != nil || st.Mode()&os.ModeDevice == 0 {
		t.Fatalf("block publication at %s: %v, %v; want a device", dev, st, err)
	}

	for target, id := range map[string]string{rw: "x", ro: "x", dev: "b"} {
		if _, err := node.NodeUnpublishVolume(ctx, &spec.NodeUnpublishVolumeRequest{VolumeId: id, TargetPath: target}); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Lstat(target); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("unpublished, %s is still there: %v", target, err)
		}
	}
	for _, id := range []string{"x", "b"} {
		if _, err := ctl.DeleteVolume(ctx, &spec.DeleteVolumeRequest{VolumeId: id}); err != nil {
			t.Errorf("delete %s once unpublished (and so unstaged): %v", id, err)
		}
	}
}
