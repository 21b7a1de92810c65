package csi

import (
	"context"
	"slices"
	"testing"

	spec "github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/rexray/rexray/engine/ledger"
)

func (h *host) stage(id, path string, c *spec.VolumeCapability) {
	h.t.Helper()
	if _, err := h.node.NodeStageVolume(context.Background(), &spec.NodeStageVolumeRequest{VolumeId: id, StagingTargetPath: path, VolumeCapability: c}); err != nil {
		h.t.Fatalf("stage %s: %v", id, err)
	}
}

func (h *host) publish(id, target string, c *spec.VolumeCapability, readOnly bool) error {
	_, err := h.node.NodePublishVolume(context.Background(), &spec.NodePublishVolumeRequest{
		VolumeId: id, TargetPath: target, StagingTargetPath: "/staged/" + id, VolumeCapability: c, Readonly: readOnly})
	return err
}

func (h *host) unpublish(id, target string) {
	h.t.Helper()
	if _, err := h.node.NodeUnpublishVolume(context.Background(), &spec.NodeUnpublishVolumeRequest{VolumeId: id, TargetPath: target}); err != nil {
		h.t.Fatalf("unpublish %s: %v", id, err)
	}
}

// Swarm stages, publishes, unpublishes and never unstages: the staging
// goes with the last publication, and the unstage that may still come
// finds nothing to do.
func TestTheStagingEndsWithTheLastPublication(t *testing.T) {
	h := memHost(t)
	ctx := context.Background()
	h.create("v", 64<<20)
	h.stage("v", "/staged/v", writer)
	h.stage("v", "/staged/v", writer) // again: nothing changes
	if !h.attached("v") || !slices.Equal(h.holds("v"), []ledger.Hold{{Kind: ledger.CSIStage, ID: "/staged/v"}}) {
		t.Fatalf("staged: attached %v, holds %v", h.attached("v"), h.holds("v"))
	}
	for _, target := range []string{"/published/v/1", "/published/v/2", "/published/v/2"} {
		if err := h.publish("v", target, writer, false); err != nil {
			t.Fatal(err)
		}
	}
	if err := h.publish("v", "/published/v/2", writer, true); status.Code(err) != codes.AlreadyExists {
		t.Errorf("publishing again read-only where it is read-write: %v, want AlreadyExists", err)
	}
	if b, _ := h.os.bound("/published/v/1"); b.source != h.mounts.Path("v") {
		t.Errorf("bound %q, want the engine's mount %s", b.source, h.mounts.Path("v"))
	}
	stats, err := h.node.NodeGetVolumeStats(ctx, &spec.NodeGetVolumeStatsRequest{VolumeId: "v", VolumePath: "/published/v/1"})
	if err != nil || len(stats.GetUsage()) != 2 || stats.GetUsage()[0].GetTotal() != 1<<30 || stats.GetUsage()[1].GetUsed() != 11 {
		t.Errorf("NodeGetVolumeStats = %v, %v", stats, err)
	}
	if _, err := h.node.NodeGetVolumeStats(ctx, &spec.NodeGetVolumeStatsRequest{VolumeId: "v", VolumePath: "/elsewhere"}); status.Code(err) != codes.NotFound {
		t.Errorf("stats where it is not published: %v, want NotFound", err)
	}

	h.unpublish("v", "/published/v/1")
	if !h.attached("v") || len(h.holds("v")) != 2 {
		t.Fatalf("one publication out: attached %v, holds %v; want the other and the staging", h.attached("v"), h.holds("v"))
	}
	h.unpublish("v", "/published/v/2")
	if h.attached("v") || len(h.holds("v")) != 0 {
		t.Fatalf("the last publication out: attached %v, holds %v; want released", h.attached("v"), h.holds("v"))
	}
	if _, err := h.node.NodeUnstageVolume(ctx, &spec.NodeUnstageVolumeRequest{VolumeId: "v", StagingTargetPath: "/staged/v"}); err != nil {
		t.Errorf("an unstage after the staging went: %v", err)
	}
	h.unpublish("v", "/published/v/2") // again: nothing to do
}

func TestAccessModesAndTypes(t *testing.T) {
	h := memHost(t)
	h.create("one", 16<<20)
	single := mountCap(spec.VolumeCapability_AccessMode_SINGLE_NODE_SINGLE_WRITER, "")
	if err := h.publish("one", "/p/1", single, false); err != nil {
		t.Fatal(err)
	}
	if err := h.publish("one", "/p/1", single, false); err != nil {
		t.Errorf("the same publication again: %v", err)
	}
	if err := h.publish("one", "/p/2", single, false); status.Code(err) != codes.FailedPrecondition {
		t.Errorf("a second single-writer publication: %v, want FailedPrecondition", err)
	}

	h.create("ro", 16<<20)
	if err := h.publish("ro", "/p/ro", mountCap(spec.VolumeCapability_AccessMode_SINGLE_NODE_READER_ONLY, ""), false); err != nil {
		t.Fatal(err)
	}
	if b, _ := h.os.bound("/p/ro"); !slices.Contains(b.opts, "ro") {
		t.Errorf("a reader-only publication bound with %v", b.opts)
	}
	if err := h.publish("ro", "/p/ro2", mountCap(spec.VolumeCapability_AccessMode_SINGLE_NODE_MULTI_WRITER, "xfs"), false); status.Code(err) != codes.InvalidArgument {
		t.Errorf("publishing an ext4 volume as xfs: %v, want InvalidArgument", err)
	}

	h.create("dev", 16<<20)
	h.stage("dev", "/staged/dev", blockCap())
	if err := h.publish("dev", "/p/dev", blockCap(), false); err != nil {
		t.Fatal(err)
	}
	v, _ := h.drv.Inspect(context.Background(), "dev")
	if b, _ := h.os.bound("/p/dev"); b.source != v.Device {
		t.Errorf("block publication bound %q, want the device %s", b.source, v.Device)
	}
	if ok, _ := h.mounts.IsMounted("dev"); ok {
		t.Error("a block publication mounted the filesystem")
	}
	if err := h.publish("dev", "/p/fs", writer, false); status.Code(err) != codes.FailedPrecondition {
		t.Errorf("mounting a volume whose device is published: %v, want FailedPrecondition", err)
	}
	stats, err := h.node.NodeGetVolumeStats(context.Background(), &spec.NodeGetVolumeStatsRequest{VolumeId: "dev", VolumePath: "/p/dev"})
	if err != nil || stats.GetUsage()[0].GetTotal() != 16<<20 {
		t.Errorf("block stats = %v, %v; want its size", stats, err)
	}
}

// At start, publications whose bind is gone are forgotten, and a volume
// left with no publication is unstaged.
func TestReconcileAfterARestart(t *testing.T) {
	h := memHost(t)
	h.create("v", 16<<20)
	h.create("w", 16<<20)
	h.stage("v", "/staged/v", writer)
	h.stage("w", "/staged/w", writer)
	for _, id := range []string{"v", "w"} {
		if err := h.publish(id, "/p/"+id, writer, false); err != nil {
			t.Fatal(err)
		}
	}
	h.os.Unbind("/p/v") // gone with the host's restart
	if err := h.srv.Reconcile(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(h.holds("v")) != 0 || h.attached("v") {
		t.Errorf("v, no longer bound: holds %v, attached %v; want released", h.holds("v"), h.attached("v"))
	}
	if len(h.holds("w")) != 2 || !h.attached("w") {
		t.Errorf("w, still bound: holds %v; want its publication and staging kept", h.holds("w"))
	}
}

func TestRequestsLackingAFieldAreRefused(t *testing.T) {
	h := memHost(t)
	ctx := context.Background()
	for what, err := range map[string]error{
		"CreateVolume without a name": func() error {
			_, err := h.ctl.CreateVolume(ctx, &spec.CreateVolumeRequest{VolumeCapabilities: []*spec.VolumeCapability{writer}})
			return err
		}(),
		"CreateVolume without capabilities": func() error {
			_, err := h.ctl.CreateVolume(ctx, &spec.CreateVolumeRequest{Name: "x"})
			return err
		}(),
		"NodeStageVolume without a capability": func() error {
			_, err := h.node.NodeStageVolume(ctx, &spec.NodeStageVolumeRequest{VolumeId: "x", StagingTargetPath: "/s"})
			return err
		}(),
		"NodePublishVolume without a target": func() error {
			_, err := h.node.NodePublishVolume(ctx, &spec.NodePublishVolumeRequest{VolumeId: "x", VolumeCapability: writer})
			return err
		}(),
		"NodePublishVolume with an option a bind cannot take": func() error {
			c := mountCap(spec.VolumeCapability_AccessMode_SINGLE_NODE_WRITER, "")
			c.GetMount().MountFlags = []string{"discard"}
			_, err := h.node.NodePublishVolume(ctx, &spec.NodePublishVolumeRequest{VolumeId: "x", TargetPath: "/t", VolumeCapability: c})
			return err
		}(),
		"NodeUnpublishVolume without a volume": func() error {
			_, err := h.node.NodeUnpublishVolume(ctx, &spec.NodeUnpublishVolumeRequest{TargetPath: "/t"})
			return err
		}(),
		"ListSnapshots with a negative page": func() error {
			_, err := h.ctl.ListSnapshots(ctx, &spec.ListSnapshotsRequest{MaxEntries: -1})
			return err
		}(),
	} {
		if status.Code(err) != codes.InvalidArgument {
			t.Errorf("%s: %v, want InvalidArgument", what, err)
		}
	}
}
