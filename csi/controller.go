package csi

import (
	"cmp"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	spec "github.com/container-storage-interface/spec/lib/go/csi"
	"github.com/docker/go-units"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/rexray/rexray/drivers"
	"github.com/rexray/rexray/engine"
	"github.com/rexray/rexray/engine/options"
	"github.com/rexray/rexray/mount"
)

// sizeStep is what a size asked for is rounded up to: every driver's
// devices take a whole number of MiB.
const sizeStep = 1 << 20

// CreateVolume implements spec.ControllerServer. Parameters are the create
// options of `docker volume create -o` (package options); the capacity
// range and the capabilities' filesystem add size and fsType, the content
// source volumeName or snapshotName. A volume of that name that fits the
// request is the answer; one that does not is AlreadyExists.
func (s *Server) CreateVolume(ctx context.Context, req *spec.CreateVolumeRequest) (*spec.CreateVolumeResponse, error) {
	name := req.GetName()
	if name == "" {
		return nil, invalid("a volume name is required")
	}
	if len(req.GetVolumeCapabilities()) == 0 {
		return nil, invalid("volume capabilities are required")
	}
	opts := maps.Clone(req.GetParameters())
	if opts == nil {
		opts = map[string]string{}
	}
	for _, c := range req.GetVolumeCapabilities() {
		a, err := accessOf(c)
		if err != nil {
			return nil, err
		}
		if err := setOption(opts, "fsType", a.fsType); err != nil {
			return nil, err
		}
	}
	switch src := req.GetVolumeContentSource().GetType().(type) {
	case *spec.VolumeContentSource_Snapshot:
		if err := setOption(opts, "snapshotName", src.Snapshot.GetSnapshotId()); err != nil {
			return nil, err
		}
	case *spec.VolumeContentSource_Volume:
		if err := setOption(opts, "volumeName", src.Volume.GetVolumeId()); err != nil {
			return nil, err
		}
	}
	required, limit := req.GetCapacityRange().GetRequiredBytes(), req.GetCapacityRange().GetLimitBytes()
	if required < 0 || limit < 0 || limit > 0 && required > limit {
		return nil, invalid("capacity range: required_bytes %d and limit_bytes %d are not a range", required, limit)
	}

	st, err := s.eng.Get(ctx, name)
	switch {
	case err == nil:
		if !within(st.Size, required, limit) {
			return nil, status.Errorf(codes.AlreadyExists, "volume %s exists, of %s: outside the capacity range asked for", name, units.BytesSize(float64(st.Size)))
		}
		// The engine compares the other options given with the volume.
		if err := s.eng.CreateCluster(ctx, name, opts); err != nil {
			return nil, err
		}
		return &spec.CreateVolumeResponse{Volume: volume(st.Volume)}, nil
	case !errors.Is(err, drivers.ErrNotFound):
		return nil, err
	}
	if err := s.size(opts, required, limit); err != nil {
		return nil, err
	}
	if err := s.eng.CreateCluster(ctx, name, opts); err != nil {
		return nil, err
	}
	if st, err = s.eng.Get(ctx, name); err != nil {
		return nil, err
	}
	return &spec.CreateVolumeResponse{Volume: volume(st.Volume)}, nil
}

// setOption sets a create option that a parameter may give too, in any
// case: the two must agree.
func setOption(opts map[string]string, key, value string) error {
	if value == "" {
		return nil
	}
	for k, v := range opts {
		if strings.EqualFold(k, key) && v != value {
			return invalid("parameter %s=%s, but the request asks for %s", k, v, value)
		}
	}
	opts[key] = value
	return nil
}

// option is a create option given in any case.
func option(opts map[string]string, key string) (string, bool) {
	for k, v := range opts {
		if strings.EqualFold(k, key) {
			return v, true
		}
	}
	return "", false
}

// within tells whether size fits a capacity range (0: unbounded).
func within(size, required, limit int64) bool {
	return size >= required && (limit == 0 || size <= limit)
}

// size adds to opts the size of a new volume: a size parameter checked
// against the range; else required_bytes, rounded up to whole MiB and to
// what its filesystem needs; else the default size, held under
// limit_bytes. A copy asked for no size keeps its source's.
func (s *Server) size(opts map[string]string, required, limit int64) error {
	if given, ok := option(opts, "size"); ok {
		n, err := options.ParseSize(given)
		if err != nil {
			return invalid("parameter size: %v", err)
		}
		if !within(n, required, limit) {
			return status.Errorf(codes.OutOfRange, "parameter size=%s is outside the capacity range asked for", given)
		}
		return nil
	}
	_, copyVol := option(opts, "volumeName")
	_, copySnap := option(opts, "snapshotName")
	if required == 0 && (limit == 0 || copyVol || copySnap) {
		return nil
	}
	fsType := s.cfg.DefaultFSType()
	if fs, ok := option(opts, "fsType"); ok {
		fsType = fs
	} else if fs, ok := option(opts, "newfstype"); ok {
		fsType = fs
	}
	least, err := mount.MinSize(strings.ToLower(fsType))
	if err != nil {
		return invalid("%v", err)
	}
	size := required
	if size == 0 {
		def, err := options.ParseSize(options.DefaultsOf(s.cfg).Size)
		if err != nil {
			return err
		}
		size = min(def, limit)
	}
	size = max((size+sizeStep-1)/sizeStep*sizeStep, least)
	if limit > 0 && size > limit {
		return status.Errorf(codes.OutOfRange, "a %s volume takes at least %s in whole MiB, more than limit_bytes %d", fsType, units.BytesSize(float64(size)), limit)
	}
	opts["size"] = fmt.Sprintf("%dB", size)
	return nil
}

// volume is a volume as CSI shows it.
func volume(v drivers.Volume) *spec.Volume {
	out := &spec.Volume{VolumeId: v.Name, CapacityBytes: v.Size}
	switch {
	case v.Snapshot != "":
		out.ContentSource = &spec.VolumeContentSource{Type: &spec.VolumeContentSource_Snapshot{
			Snapshot: &spec.VolumeContentSource_SnapshotSource{SnapshotId: v.Snapshot}}}
	case v.Origin != "":
		out.ContentSource = &spec.VolumeContentSource{Type: &spec.VolumeContentSource_Volume{
			Volume: &spec.VolumeContentSource_VolumeSource{VolumeId: v.Origin}}}
	}
	return out
}

// DeleteVolume implements spec.ControllerServer: a volume that is not
// there (another host removed it, or never had it) is deleted.
func (s *Server) DeleteVolume(ctx context.Context, req *spec.DeleteVolumeRequest) (*spec.DeleteVolumeResponse, error) {
	id := req.GetVolumeId()
	if id == "" {
		return nil, invalid("a volume ID is required")
	}
	if drivers.ValidateName(id) != nil {
		return &spec.DeleteVolumeResponse{}, nil // no volume has that name
	}
	if err := s.eng.Remove(ctx, id); err != nil && !errors.Is(err, drivers.ErrNotFound) {
		return nil, err
	}
	return &spec.DeleteVolumeResponse{}, nil
}

// ValidateVolumeCapabilities implements spec.ControllerServer.
func (s *Server) ValidateVolumeCapabilities(ctx context.Context, req *spec.ValidateVolumeCapabilitiesRequest) (*spec.ValidateVolumeCapabilitiesResponse, error) {
	if req.GetVolumeId() == "" {
		return nil, invalid("a volume ID is required")
	}
	if len(req.GetVolumeCapabilities()) == 0 {
		return nil, invalid("volume capabilities are required")
	}
	st, err := s.eng.Get(ctx, req.GetVolumeId())
	if err != nil {
		return nil, err
	}
	for _, c := range req.GetVolumeCapabilities() {
		a, err := accessOf(c)
		if err == nil {
			err = a.fits(st.FSType)
		}
		if err != nil {
			return &spec.ValidateVolumeCapabilitiesResponse{Message: status.Convert(err).Message()}, nil
		}
	}
	return &spec.ValidateVolumeCapabilitiesResponse{Confirmed: &spec.ValidateVolumeCapabilitiesResponse_Confirmed{
		VolumeContext: req.GetVolumeContext(), VolumeCapabilities: req.GetVolumeCapabilities(), Parameters: req.GetParameters(),
	}}, nil
}

// ListVolumes implements spec.ControllerServer, in the order of names.
func (s *Server) ListVolumes(ctx context.Context, req *spec.ListVolumesRequest) (*spec.ListVolumesResponse, error) {
	infos, err := s.eng.Volumes(ctx)
	if err != nil {
		return nil, err
	}
	slices.SortFunc(infos, func(a, b engine.VolumeInfo) int { return cmp.Compare(a.Name, b.Name) })
	page, next, err := paginate(infos, func(v engine.VolumeInfo) string { return v.Name }, req.GetStartingToken(), req.GetMaxEntries())
	if err != nil {
		return nil, err
	}
	resp := &spec.ListVolumesResponse{NextToken: next}
	for _, v := range page {
		resp.Entries = append(resp.Entries, &spec.ListVolumesResponse_Entry{Volume: volume(v.Volume)})
	}
	return resp, nil
}

// paginate is the page of items, sorted by key, that follows token, with
// the token of the next one. A token is the last key of a page, encoded:
// a page begins where the last one ended even when items were added or
// removed between the two.
func paginate[T any](items []T, key func(T) string, token string, max int32) ([]T, string, error) {
	if max < 0 {
		return nil, "", invalid("max_entries %d: must be 0 (all) or more", max)
	}
	if token != "" {
		after, err := base64.RawURLEncoding.DecodeString(token)
		if err != nil || drivers.ValidateNameOf("token", string(after)) != nil {
			return nil, "", status.Errorf(codes.Aborted, "starting_token %q is not one this plugin gave", token)
		}
		i, _ := slices.BinarySearchFunc(items, string(after), func(it T, k string) int { return cmp.Compare(key(it), k) })
		if i < len(items) && key(items[i]) == string(after) {
			i++
		}
		items = items[i:]
	}
	if max == 0 || int(max) >= len(items) {
		return items, "", nil
	}
	page := items[:max]
	return page, base64.RawURLEncoding.EncodeToString([]byte(key(page[len(page)-1]))), nil
}

// GetCapacity implements spec.ControllerServer: the room the service
// (parameter service, else the default) has left.
func (s *Server) GetCapacity(ctx context.Context, req *spec.GetCapacityRequest) (*spec.GetCapacityResponse, error) {
	for _, c := range req.GetVolumeCapabilities() {
		if _, err := accessOf(c); err != nil {
			return &spec.GetCapacityResponse{}, nil // none for what cannot be made
		}
	}
	service, _ := option(req.GetParameters(), "service")
	n, err := s.eng.Capacity(ctx, service)
	if err != nil {
		return nil, err
	}
	return &spec.GetCapacityResponse{AvailableCapacity: n}, nil
}

// CreateSnapshot implements spec.ControllerServer. A snapshot of that name
// of the same volume is the answer; of another volume, AlreadyExists.
func (s *Server) CreateSnapshot(ctx context.Context, req *spec.CreateSnapshotRequest) (*spec.CreateSnapshotResponse, error) {
	name, vol := req.GetName(), req.GetSourceVolumeId()
	switch {
	case name == "":
		return nil, invalid("a snapshot name is required")
	case vol == "":
		return nil, invalid("a source volume ID is required")
	case len(req.GetParameters()) > 0:
		return nil, invalid("snapshots take no parameters")
	}
	snap, err := s.eng.CreateSnapshot(ctx, vol, name)
	if errors.Is(err, drivers.ErrSnapshotExists) {
		if snap, err = s.eng.Snapshot(ctx, name); err == nil && snap.VolumeName != vol {
			return nil, status.Errorf(codes.AlreadyExists, "snapshot %s exists, of volume %s", name, snap.VolumeName)
		}
	}
	if err != nil {
		return nil, err
	}
	return &spec.CreateSnapshotResponse{Snapshot: snapshot(snap)}, nil
}

func snapshot(s engine.Snapshot) *spec.Snapshot {
	return &spec.Snapshot{
		SnapshotId: s.Name, SourceVolumeId: s.VolumeName, SizeBytes: s.Size,
		CreationTime: timestamppb.New(s.CreatedAt), ReadyToUse: true,
	}
}

// DeleteSnapshot implements spec.ControllerServer: one that is not there
// is deleted.
func (s *Server) DeleteSnapshot(ctx context.Context, req *spec.DeleteSnapshotRequest) (*spec.DeleteSnapshotResponse, error) {
	id := req.GetSnapshotId()
	if id == "" {
		return nil, invalid("a snapshot ID is required")
	}
	if drivers.ValidateSnapshotName(id) != nil {
		return &spec.DeleteSnapshotResponse{}, nil
	}
	if err := s.eng.RemoveSnapshot(ctx, id); err != nil && !errors.Is(err, drivers.ErrSnapshotNotFound) {
		return nil, err
	}
	return &spec.DeleteSnapshotResponse{}, nil
}

// GetSnapshot implements spec.ControllerServer.
func (s *Server) GetSnapshot(ctx context.Context, req *spec.GetSnapshotRequest) (*spec.GetSnapshotResponse, error) {
	if req.GetSnapshotId() == "" {
		return nil, invalid("a snapshot ID is required")
	}
	snap, err := s.eng.Snapshot(ctx, req.GetSnapshotId())
	if err != nil {
		return nil, err
	}
	return &spec.GetSnapshotResponse{Snapshot: snapshot(snap)}, nil
}

// ListSnapshots implements spec.ControllerServer, in the order of names.
func (s *Server) ListSnapshots(ctx context.Context, req *spec.ListSnapshotsRequest) (*spec.ListSnapshotsResponse, error) {
	var snaps []engine.Snapshot
	if id := req.GetSnapshotId(); id != "" {
		snap, err := s.eng.Snapshot(ctx, id)
		switch {
		case err == nil:
			snaps = []engine.Snapshot{snap}
		case !errors.Is(err, drivers.ErrSnapshotNotFound) && !errors.Is(err, drivers.ErrInvalid):
			return nil, err
		}
	} else {
		var err error
		if snaps, err = s.eng.Snapshots(ctx); err != nil {
			return nil, err
		}
	}
	if vol := req.GetSourceVolumeId(); vol != "" {
		snaps = slices.DeleteFunc(snaps, func(s engine.Snapshot) bool { return s.VolumeName != vol })
	}
	slices.SortFunc(snaps, func(a, b engine.Snapshot) int { return cmp.Compare(a.Name, b.Name) })
	page, next, err := paginate(snaps, func(s engine.Snapshot) string { return s.Name }, req.GetStartingToken(), req.GetMaxEntries())
	if err != nil {
		return nil, err
	}
	resp := &spec.ListSnapshotsResponse{NextToken: next}
	for _, snap := range page {
		resp.Entries = append(resp.Entries, &spec.ListSnapshotsResponse_Entry{Snapshot: snapshot(snap)})
	}
	return resp, nil
}

// ControllerPublishVolume implements spec.ControllerServer for a CO that
// calls it unasked (it is not offered): it checks that the node may have
// the volume, and attaches nothing, since a driver attaches from the
// host that uses it (NodeStageVolume). A volume another node holds is
// refused, as staging it there would be.
func (s *Server) ControllerPublishVolume(ctx context.Context, req *spec.ControllerPublishVolumeRequest) (*spec.ControllerPublishVolumeResponse, error) {
	switch {
	case req.GetVolumeId() == "":
		return nil, invalid("a volume ID is required")
	case req.GetNodeId() == "":
		return nil, invalid("a node ID is required")
	}
	a, err := accessOf(req.GetVolumeCapability())
	if err != nil {
		return nil, err
	}
	st, err := s.eng.Get(ctx, req.GetVolumeId())
	if err != nil {
		return nil, err
	}
	if err := a.fits(st.FSType); err != nil {
		return nil, err
	}
	if other := heldElsewhere(st.Fields["attachedTo"], req.GetNodeId()); other != "" {
		return nil, status.Errorf(codes.FailedPrecondition,
			"volume %s is attached to node %s: unpublish it there first, or set REXRAY_PREEMPT=true to take it over", req.GetVolumeId(), other)
	}
	return &spec.ControllerPublishVolumeResponse{}, nil
}

// heldElsewhere is the holder, among a driver's comma-separated
// attachedTo field, that is not node.
func heldElsewhere(attachedTo, node string) string {
	for h := range strings.SplitSeq(attachedTo, ",") {
		if h = strings.TrimSpace(h); h != "" && h != node {
			return h
		}
	}
	return ""
}

// ControllerUnpublishVolume implements spec.ControllerServer: the node
// detaches a volume itself when its last staging goes
// (NodeUnstageVolume), so there is nothing left to undo here.
func (s *Server) ControllerUnpublishVolume(ctx context.Context, req *spec.ControllerUnpublishVolumeRequest) (*spec.ControllerUnpublishVolumeResponse, error) {
	if req.GetVolumeId() == "" {
		return nil, invalid("a volume ID is required")
	}
	return &spec.ControllerUnpublishVolumeResponse{}, nil
}
