package csi

import (
	"context"
	"slices"

	spec "github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/rexray/rexray/engine/ledger"
)

// ControllerExpandVolume implements spec.ControllerServer: the volume
// grows to required_bytes, in whole MiB, online. Its filesystem grows on
// the node that has it mounted (NodeExpandVolume, or by itself within
// seconds); a volume already as large is left as it is.
func (s *Server) ControllerExpandVolume(ctx context.Context, req *spec.ControllerExpandVolumeRequest) (*spec.ControllerExpandVolumeResponse, error) {
	id, r := req.GetVolumeId(), req.GetCapacityRange()
	switch {
	case id == "":
		return nil, invalid("a volume ID is required")
	case r == nil || r.GetRequiredBytes() <= 0 && r.GetLimitBytes() <= 0:
		return nil, invalid("a capacity range is required")
	}
	block := false
	if c := req.GetVolumeCapability(); c != nil {
		a, err := accessOf(c)
		if err != nil {
			return nil, err
		}
		block = a.block
	}
	st, err := s.eng.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	size := (r.GetRequiredBytes() + sizeStep - 1) / sizeStep * sizeStep
	if size <= st.Size {
		if limit := r.GetLimitBytes(); limit > 0 && st.Size > limit {
			return nil, status.Errorf(codes.OutOfRange, "volume %s is %d bytes, more than limit_bytes %d, and is never shrunk", id, st.Size, limit)
		}
		return &spec.ControllerExpandVolumeResponse{CapacityBytes: st.Size}, nil
	}
	if limit := r.GetLimitBytes(); limit > 0 && size > limit {
		return nil, status.Errorf(codes.OutOfRange, "required_bytes %d in whole MiB is %d, more than limit_bytes %d", r.GetRequiredBytes(), size, limit)
	}
	st, err = s.eng.Resize(ctx, id, size)
	if err != nil {
		return nil, err
	}
	return &spec.ControllerExpandVolumeResponse{CapacityBytes: st.Size, NodeExpansionRequired: !block}, nil
}

// NodeExpandVolume implements spec.NodeServer, for a path the volume is
// staged or published at on this node: its device takes the volume's
// size, and its filesystem grows to it, online.
func (s *Server) NodeExpandVolume(ctx context.Context, req *spec.NodeExpandVolumeRequest) (*spec.NodeExpandVolumeResponse, error) {
	id, path := req.GetVolumeId(), req.GetVolumePath()
	if err := required(id, "a volume ID", path, "a volume path"); err != nil {
		return nil, err
	}
	if _, err := s.eng.Get(ctx, id); err != nil {
		return nil, err
	}
	holds, err := s.holds(ctx, id)
	if err != nil {
		return nil, err
	}
	if !slices.ContainsFunc(holds, func(h ledger.Hold) bool { return h.ID == path && (isPublication(h) || h.Kind == ledger.CSIStage) }) {
		return nil, status.Errorf(codes.NotFound, "volume %s is neither staged nor published at %s on this node", id, path)
	}
	st, err := s.eng.GrowFS(ctx, id)
	if err != nil {
		return nil, err
	}
	if need := req.GetCapacityRange().GetRequiredBytes(); need > st.Size {
		return nil, status.Errorf(codes.OutOfRange, "volume %s is %d bytes, less than required_bytes %d: ControllerExpandVolume grows it first", id, st.Size, need)
	}
	return &spec.NodeExpandVolumeResponse{CapacityBytes: st.Size}, nil
}
