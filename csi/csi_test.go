package csi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"

	spec "github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/rexray/rexray/drivers"
	"github.com/rexray/rexray/drivers/memdriver"
	"github.com/rexray/rexray/engine/platform"
	"github.com/rexray/rexray/mount"
)

// docker posts one call of Docker's volume plugin protocol to the socket,
// over HTTP/1.1 as dockerd does, and decodes the answer into res.
func (h *host) docker(method string, req, res any) {
	h.t.Helper()
	c := http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", h.sock)
	}}}
	defer c.CloseIdleConnections()
	body, _ := json.Marshal(req)
	resp, err := c.Post("http://plugin/"+method, "application/json", bytes.NewReader(body))
	if err != nil {
		h.t.Fatalf("%s: %v", method, err)
	}
	defer resp.Body.Close()
	if resp.ProtoMajor != 1 {
		h.t.Errorf("%s answered over HTTP/%d, want dockerd's HTTP/1.1", method, resp.ProtoMajor)
	}
	var out struct{ Err string }
	raw := new(bytes.Buffer)
	raw.ReadFrom(resp.Body)
	json.Unmarshal(raw.Bytes(), &out)
	if resp.StatusCode != http.StatusOK || out.Err != "" {
		h.t.Fatalf("%s: %d %s", method, resp.StatusCode, raw)
	}
	if res != nil {
		if err := json.Unmarshal(raw.Bytes(), res); err != nil {
			h.t.Fatalf("%s: %v", method, err)
		}
	}
}

// One socket answers dockerd and a CSI client, over the same volumes and
// the same holds: a container's mount and a CSI publication of one volume
// share its mount, and the last of them releases it.
func TestOneSocketServesDockerAndCSI(t *testing.T) {
	h := memHost(t)
	ctx := context.Background()
	var act struct{ Implements []string }
	h.docker("Plugin.Activate", nil, &act)
	if !slices.Equal(act.Implements, []string{"VolumeDriver"}) {
		t.Errorf("Plugin.Activate = %v", act.Implements)
	}
	info, err := h.id.GetPluginInfo(ctx, &spec.GetPluginInfoRequest{})
	if err != nil || info.GetName() != PluginName || info.GetVendorVersion() != "test" {
		t.Fatalf("GetPluginInfo = %v, %v", info, err)
	}

	h.docker("VolumeDriver.Create", map[string]any{"Name": "fromdocker", "Opts": map[string]string{"size": "64MiB"}}, nil)
	h.create("fromcsi", 32<<20)
	list, err := h.ctl.ListVolumes(ctx, &spec.ListVolumesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range list.GetEntries() {
		got = append(got, fmt.Sprintf("%s:%d", e.GetVolume().GetVolumeId(), e.GetVolume().GetCapacityBytes()))
	}
	if want := []string{"fromcsi:33554432", "fromdocker:67108864"}; !slices.Equal(got, want) {
		t.Errorf("ListVolumes = %v, want %v", got, want)
	}
	// Docker's API leaves the cluster volume to the swarm, so that
	// dockerd resolves its name there.
	var dl struct{ Volumes []struct{ Name string } }
	h.docker("VolumeDriver.List", struct{}{}, &dl)
	if len(dl.Volumes) != 1 || dl.Volumes[0].Name != "fromdocker" {
		t.Errorf("Docker's List = %v, want the classic volume alone", dl.Volumes)
	}

	var m struct{ Mountpoint string }
	h.docker("VolumeDriver.Mount", map[string]string{"Name": "fromcsi", "ID": "c1"}, &m)
	target := "/pods/p1/fromcsi"
	if _, err := h.node.NodePublishVolume(ctx, &spec.NodePublishVolumeRequest{VolumeId: "fromcsi", TargetPath: target, VolumeCapability: writer}); err != nil {
		t.Fatal(err)
	}
	if b, ok := h.os.bound(target); !ok || b.source != m.Mountpoint {
		t.Fatalf("published %v from %q; want the container's mount %s bound", ok, b.source, m.Mountpoint)
	}
	h.docker("VolumeDriver.Unmount", map[string]string{"Name": "fromcsi", "ID": "c1"}, nil)
	if ok, _ := h.mounts.IsMounted("fromcsi"); !ok {
		t.Fatal("the container's unmount took the volume from under the CSI publication")
	}
	if _, err := h.node.NodeUnpublishVolume(ctx, &spec.NodeUnpublishVolumeRequest{VolumeId: "fromcsi", TargetPath: target}); err != nil {
		t.Fatal(err)
	}
	if ok, _ := h.mounts.IsMounted("fromcsi"); ok || h.attached("fromcsi") || len(h.holds("fromcsi")) > 0 {
		t.Error("the last publication out left the volume mounted, attached or held")
	}
	if _, ok := h.os.bound(target); ok {
		t.Error("unpublished, the target is still bound")
	}
}

func TestErrorsMapToCodes(t *testing.T) {
	for err, want := range map[error]codes.Code{
		fmt.Errorf("get: %w", drivers.ErrNotFound):                                  codes.NotFound,
		fmt.Errorf("snap: %w", drivers.ErrSnapshotNotFound):                         codes.NotFound,
		fmt.Errorf("create: %w", drivers.ErrExists):                                 codes.AlreadyExists,
		drivers.Invalid("bad size"):                                                 codes.InvalidArgument,
		fmt.Errorf("mount: %w", &drivers.HeldError{Volume: "v", Holder: "host b"}):  codes.FailedPrecondition,
		&drivers.UnsupportedError{Driver: "d", Capability: drivers.CapSnapshots}:    codes.Unimplemented,
		fmt.Errorf("get: %w", platform.ErrNoAnswer):                                 codes.Unavailable,
		errors.Join(drivers.ErrNotFound, fmt.Errorf("b: %w", platform.ErrNoAnswer)): codes.Unavailable,
		&mount.NoFilesystemError{Device: "/dev/x"}:                                  codes.FailedPrecondition,
		fmt.Errorf("wait: %w", context.DeadlineExceeded):                            codes.DeadlineExceeded,
		status.Error(codes.Aborted, "as it is"):                                     codes.Aborted,
		errors.New("mkfs.ext4: exit status 1"):                                      codes.Internal,
	} {
		if got := statusOf(err); got.Code() != want || got.Message() != err.Error() && want != codes.Aborted {
			t.Errorf("statusOf(%v) = %v, want %v with the error's message", err, got, want)
		}
	}

	// And as a client sees them.
	store := memdriver.NewStore()
	h, b := newHost(t, store.Driver("a")), newHost(t, store.Driver("b"))
	ctx := context.Background()
	code := func(what string, err error, want codes.Code) {
		t.Helper()
		if got := status.Code(err); got != want {
			t.Errorf("%s: %v (%s), want %s", what, err, got, want)
		}
	}
	_, err := h.ctl.CreateVolume(ctx, &spec.CreateVolumeRequest{Name: "v", VolumeCapabilities: []*spec.VolumeCapability{writer}, Parameters: map[string]string{"colour": "red"}})
	code("an unknown parameter", err, codes.InvalidArgument)
	if err == nil || !strings.Contains(err.Error(), "accepted options are size") {
		t.Errorf("the unknown parameter's error %v does not list the accepted ones", err)
	}
	h.create("v", 64<<20)
	_, err = h.ctl.CreateVolume(ctx, &spec.CreateVolumeRequest{Name: "v", VolumeCapabilities: []*spec.VolumeCapability{writer}, Parameters: map[string]string{"iops": "7"}})
	code("a volume that exists with other options", err, codes.AlreadyExists)
	if _, err := h.node.NodeStageVolume(ctx, &spec.NodeStageVolumeRequest{VolumeId: "v", StagingTargetPath: "/staged/v", VolumeCapability: writer}); err != nil {
		t.Fatal(err)
	}
	_, err = h.ctl.DeleteVolume(ctx, &spec.DeleteVolumeRequest{VolumeId: "v"})
	code("delete of a staged volume", err, codes.FailedPrecondition)
	_, err = b.node.NodeStageVolume(ctx, &spec.NodeStageVolumeRequest{VolumeId: "v", StagingTargetPath: "/staged/v", VolumeCapability: writer})
	code("stage on host b of a volume host a holds", err, codes.FailedPrecondition)
	if err == nil || !strings.Contains(err.Error(), "REXRAY_PREEMPT") {
		t.Errorf("the refusal %v does not say how to take the volume over", err)
	}
	_, err = h.node.NodeStageVolume(ctx, &spec.NodeStageVolumeRequest{VolumeId: "nosuch", StagingTargetPath: "/staged/x", VolumeCapability: writer})
	code("stage of a missing volume", err, codes.NotFound)
	_, err = h.ctl.CreateVolume(ctx, &spec.CreateVolumeRequest{Name: "m", VolumeCapabilities: []*spec.VolumeCapability{
		mountCap(spec.VolumeCapability_AccessMode_MULTI_NODE_READER_ONLY, "")}})
	code("a multi-node access mode", err, codes.InvalidArgument)
	_, err = h.ctl.ControllerPublishVolume(ctx, &spec.ControllerPublishVolumeRequest{VolumeId: "v", NodeId: "b", VolumeCapability: writer})
	code("publish to node b of a volume node a holds", err, codes.FailedPrecondition)
	if err == nil || !strings.Contains(err.Error(), "attached to node a") {
		t.Errorf("the refusal %v does not name the holder", err)
	}
	_, err = h.ctl.ControllerPublishVolume(ctx, &spec.ControllerPublishVolumeRequest{VolumeId: "v", NodeId: "a", VolumeCapability: writer})
	code("publish to the node that holds it", err, codes.OK)
	_, err = h.ctl.ControllerPublishVolume(ctx, &spec.ControllerPublishVolumeRequest{VolumeId: "nosuch", NodeId: "a", VolumeCapability: writer})
	code("publish of a missing volume", err, codes.NotFound)
	_, err = h.ctl.ControllerPublishVolume(ctx, &spec.ControllerPublishVolumeRequest{VolumeId: "v", VolumeCapability: writer})
	code("publish without a node", err, codes.InvalidArgument)
	_, err = h.ctl.ControllerUnpublishVolume(ctx, &spec.ControllerUnpublishVolumeRequest{VolumeId: "v", NodeId: "b"})
	code("unpublish from a node that has nothing", err, codes.OK)
}
