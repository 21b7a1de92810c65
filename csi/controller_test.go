package csi

import (
	"context"
	"fmt"
	"slices"
	"testing"

	spec "github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/rexray/rexray/drivers"
	"github.com/rexray/rexray/drivers/memdriver"
)

// coreOnly is a driver with the core and no capability.
type coreOnly struct{ drivers.Driver }

func controllerCaps(t *testing.T, h *host) []spec.ControllerServiceCapability_RPC_Type {
	t.Helper()
	res, err := h.ctl.ControllerGetCapabilities(context.Background(), &spec.ControllerGetCapabilitiesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var types []spec.ControllerServiceCapability_RPC_Type
	for _, c := range res.GetCapabilities() {
		types = append(types, c.GetRpc().GetType())
	}
	return types
}

// What is offered is what the driver can do.
func TestCapabilitiesFollowTheDriver(t *testing.T) {
	full := controllerCaps(t, memHost(t))
	for _, want := range []spec.ControllerServiceCapability_RPC_Type{
		spec.ControllerServiceCapability_RPC_CREATE_DELETE_VOLUME, spec.ControllerServiceCapability_RPC_LIST_VOLUMES,
		spec.ControllerServiceCapability_RPC_CLONE_VOLUME, spec.ControllerServiceCapability_RPC_CREATE_DELETE_SNAPSHOT,
		spec.ControllerServiceCapability_RPC_LIST_SNAPSHOTS, spec.ControllerServiceCapability_RPC_GET_SNAPSHOT,
		spec.ControllerServiceCapability_RPC_GET_CAPACITY,
	} {
		if !slices.Contains(full, want) {
			t.Errorf("memdriver has every capability, but %s is not offered (%v)", want, full)
		}
	}
	if slices.Contains(full, spec.ControllerServiceCapability_RPC_PUBLISH_UNPUBLISH_VOLUME) {
		t.Error("ControllerPublishVolume offered: a controller cannot attach a volume to another host")
	}

	h := newHost(t, coreOnly{memdriver.NewStore().Driver("a")})
	core := controllerCaps(t, h)
	for _, not := range []spec.ControllerServiceCapability_RPC_Type{
		spec.ControllerServiceCapability_RPC_CREATE_DELETE_SNAPSHOT, spec.ControllerServiceCapability_RPC_LIST_SNAPSHOTS,
		spec.ControllerServiceCapability_RPC_GET_SNAPSHOT, spec.ControllerServiceCapability_RPC_GET_CAPACITY,
	} {
		if slices.Contains(core, not) {
			t.Errorf("%s offered for a driver without the capability", not)
		}
	}
	_, err := h.ctl.GetCapacity(context.Background(), &spec.GetCapacityRequest{})
	if status.Code(err) != codes.Unimplemented {
		t.Errorf("GetCapacity of a driver that cannot tell: %v, want Unimplemented", err)
	}
}

// Pages follow each other by name, whatever is removed between them.
func TestListVolumesPages(t *testing.T) {
	h := memHost(t)
	ctx := context.Background()
	for i := range 5 {
		h.create(fmt.Sprintf("v%d", i), 8<<20)
	}
	var seen []string
	token := ""
	for range 4 {
		res, err := h.ctl.ListVolumes(ctx, &spec.ListVolumesRequest{MaxEntries: 2, StartingToken: token})
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range res.GetEntries() {
			seen = append(seen, e.GetVolume().GetVolumeId())
		}
		if len(seen) == 2 {
			// v1, the last of the first page, goes before the next one.
			if _, err := h.ctl.DeleteVolume(ctx, &spec.DeleteVolumeRequest{VolumeId: "v1"}); err != nil {
				t.Fatal(err)
			}
		}
		if token = res.GetNextToken(); token == "" {
			break
		}
	}
	if want := []string{"v0", "v1", "v2", "v3", "v4"}; !slices.Equal(seen, want) || token != "" {
		t.Errorf("pages of 2 listed %v (next token %q), want %v and no token after the last", seen, token, want)
	}
	_, err := h.ctl.ListVolumes(ctx, &spec.ListVolumesRequest{StartingToken: "invalid-token"})
	if status.Code(err) != codes.Aborted {
		t.Errorf("a token this plugin never gave: %v, want Aborted", err)
	}
}

// The capacity range becomes the size, in whole MiB and no less than the
// filesystem needs; a volume that exists answers a request it fits.
func TestCreateVolumeSizes(t *testing.T) {
	h := memHost(t)
	ctx := context.Background()
	create := func(name string, required, limit int64, c *spec.VolumeCapability, params map[string]string) (*spec.Volume, error) {
		res, err := h.ctl.CreateVolume(ctx, &spec.CreateVolumeRequest{
			Name: name, VolumeCapabilities: []*spec.VolumeCapability{c}, Parameters: params,
			CapacityRange: &spec.CapacityRange{RequiredBytes: required, LimitBytes: limit},
		})
		return res.GetVolume(), err
	}
	xfs := mountCap(spec.VolumeCapability_AccessMode_SINGLE_NODE_WRITER, "xfs")
	for _, c := range []struct {
		name            string
		required, limit int64
		cap             *spec.VolumeCapability
		params          map[string]string
		size            int64
		fsType          string
	}{
		{"rounded", 1<<30 + 1, 0, writer, nil, 1<<30 + 1<<20, "ext4"},
		{"small", 1 << 20, 0, writer, nil, 8 << 20, "ext4"},
		{"xfs", 1 << 20, 0, xfs, nil, 300 << 20, "xfs"},
		{"default", 0, 0, writer, nil, 1 << 30, "ext4"},
		{"limited", 0, 100 << 20, writer, nil, 100 << 20, "ext4"},
		{"param", 0, 0, blockCap(), map[string]string{"size": "48MiB", "fsType": "ext4"}, 48 << 20, "ext4"},
	} {
		v, err := create(c.name, c.required, c.limit, c.cap, c.params)
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		st, _ := h.eng.Get(ctx, c.name)
		if v.GetCapacityBytes() != c.size || st.Size != c.size || st.FSType != c.fsType {
			t.Errorf("%s: capacity %d, volume of %d bytes, %s; want %d, %s", c.name, v.GetCapacityBytes(), st.Size, st.FSType, c.size, c.fsType)
		}
	}
	if _, err := create("small", 4<<20, 10<<20, writer, nil); err != nil {
		t.Errorf("a request the volume fits: %v", err)
	}
	for _, c := range []struct {
		what            string
		name            string
		required, limit int64
		cap             *spec.VolumeCapability
		params          map[string]string
		want            codes.Code
	}{
		{"an existing volume too small", "small", 9 << 20, 0, writer, nil, codes.AlreadyExists},
		{"an existing volume of another filesystem", "small", 0, 0, xfs, nil, codes.AlreadyExists},
		{"a limit below the filesystem's least", "tiny", 1 << 20, 2 << 20, writer, nil, codes.OutOfRange},
		{"a size parameter outside the range", "p", 1 << 30, 0, writer, map[string]string{"size": "1MiB"}, codes.OutOfRange},
		{"a range upside down", "r", 2 << 30, 1 << 30, writer, nil, codes.InvalidArgument},
		{"a parameter the capability contradicts", "c", 0, 0, xfs, map[string]string{"fstype": "ext4"}, codes.InvalidArgument},
	} {
		if _, err := create(c.name, c.required, c.limit, c.cap, c.params); status.Code(err) != c.want {
			t.Errorf("%s: %v, want %s", c.what, err, c.want)
		}
	}
}

func TestSnapshotsAndCopies(t *testing.T) {
	h := memHost(t)
	ctx := context.Background()
	h.create("a", 16<<20)
	h.create("b", 16<<20)
	snap := func(name, vol string) (*spec.Snapshot, error) {
		res, err := h.ctl.CreateSnapshot(ctx, &spec.CreateSnapshotRequest{Name: name, SourceVolumeId: vol})
		return res.GetSnapshot(), err
	}
	s1, err := snap("s1", "a")
	if err != nil || s1.GetSourceVolumeId() != "a" || s1.GetSizeBytes() != 16<<20 || !s1.GetReadyToUse() || s1.GetCreationTime() == nil {
		t.Fatalf("CreateSnapshot = %v, %v", s1, err)
	}
	if again, err := snap("s1", "a"); err != nil || again.GetSnapshotId() != "s1" {
		t.Errorf("the same snapshot again: %v, %v", again, err)
	}
	if _, err := snap("s1", "b"); status.Code(err) != codes.AlreadyExists {
		t.Errorf("the name of a snapshot of another volume: %v, want AlreadyExists", err)
	}
	if _, err := snap("s2", "b"); err != nil {
		t.Fatal(err)
	}
	list, err := h.ctl.ListSnapshots(ctx, &spec.ListSnapshotsRequest{SourceVolumeId: "b"})
	if err != nil || len(list.GetEntries()) != 1 || list.GetEntries()[0].GetSnapshot().GetSnapshotId() != "s2" {
		t.Errorf("ListSnapshots of volume b = %v, %v", list, err)
	}
	if list, err := h.ctl.ListSnapshots(ctx, &spec.ListSnapshotsRequest{SnapshotId: "none"}); err != nil || len(list.GetEntries()) != 0 {
		t.Errorf("ListSnapshots of a missing one = %v, %v", list, err)
	}

	for name, src := range map[string]*spec.VolumeContentSource{
		"of-s1": {Type: &spec.VolumeContentSource_Snapshot{Snapshot: &spec.VolumeContentSource_SnapshotSource{SnapshotId: "s1"}}},
		"of-b":  {Type: &spec.VolumeContentSource_Volume{Volume: &spec.VolumeContentSource_VolumeSource{VolumeId: "b"}}},
	} {
		res, err := h.ctl.CreateVolume(ctx, &spec.CreateVolumeRequest{Name: name, VolumeCapabilities: []*spec.VolumeCapability{writer}, VolumeContentSource: src})
		if err != nil || res.GetVolume().GetContentSource().String() != src.String() || res.GetVolume().GetCapacityBytes() != 16<<20 {
			t.Errorf("copy %s = %v, %v; want its source named, of its size", name, res, err)
		}
	}
	_, err = h.ctl.CreateVolume(ctx, &spec.CreateVolumeRequest{Name: "c", VolumeCapabilities: []*spec.VolumeCapability{writer},
		VolumeContentSource: &spec.VolumeContentSource{Type: &spec.VolumeContentSource_Snapshot{Snapshot: &spec.VolumeContentSource_SnapshotSource{SnapshotId: "none"}}}})
	if status.Code(err) != codes.NotFound {
		t.Errorf("a copy of a missing snapshot: %v, want NotFound", err)
	}
	for _, id := range []string{"s1", "s1", "not/a/name"} {
		if _, err := h.ctl.DeleteSnapshot(ctx, &spec.DeleteSnapshotRequest{SnapshotId: id}); err != nil {
			t.Errorf("DeleteSnapshot %s: %v", id, err)
		}
	}
	if _, err := h.ctl.GetSnapshot(ctx, &spec.GetSnapshotRequest{SnapshotId: "s1"}); status.Code(err) != codes.NotFound {
		t.Errorf("GetSnapshot of a deleted one: %v, want NotFound", err)
	}
}

// offlineDriver grows only volumes no host has attached.
type offlineDriver struct{ *memdriver.Driver }

func (offlineDriver) ExpandsOffline() {}

// Expansion is advertised online only when every driver grows volumes in
// use: a CO must not grow a published volume of one that refuses it.
func TestExpansionOnlineOrOffline(t *testing.T) {
	for _, c := range []struct {
		name string
		d    drivers.Driver
		want spec.PluginCapability_VolumeExpansion_Type
	}{
		{"online", memdriver.NewStore().Driver("a"), spec.PluginCapability_VolumeExpansion_ONLINE},
		{"offline", offlineDriver{memdriver.NewStore().Driver("a")}, spec.PluginCapability_VolumeExpansion_OFFLINE},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := newHost(t, c.d)
			res, err := h.id.GetPluginCapabilities(context.Background(), &spec.GetPluginCapabilitiesRequest{})
			if err != nil {
				t.Fatal(err)
			}
			var got []spec.PluginCapability_VolumeExpansion_Type
			for _, cp := range res.Capabilities {
				if e := cp.GetVolumeExpansion(); e != nil {
					got = append(got, e.Type)
				}
			}
			if len(got) != 1 || got[0] != c.want {
				t.Errorf("volume expansion advertised %v, want [%v]", got, c.want)
			}
		})
	}
}
