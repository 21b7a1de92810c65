package csi

import (
	"context"
	"errors"
	"fmt"
	"slices"

	spec "github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/rexray/rexray/engine/ledger"
)

// Staging attaches the volume to this host and holds its device; each
// publication mounts it through the engine (or takes its device, for a
// block publication) and binds that at its target path, so that every
// publication and Docker mount of the volume on this host shares one
// mount. A publication stands on its own: it needs no staging first, and
// the staging of a volume ends with its last publication, because
// swarmkit never calls NodeUnstageVolume (moby/swarmkit#3178). A later
// NodeUnstageVolume finds nothing to do.

// isPublication tells whether h is a CSI publication.
func isPublication(h ledger.Hold) bool { return h.Kind == ledger.CSI || h.Kind == ledger.CSIBlock }

// holds are the holds of a volume on this host.
func (s *Server) holds(ctx context.Context, name string) ([]ledger.Hold, error) {
	held, err := s.eng.Held(ctx)
	return held[name], err
}

// NodeStageVolume implements spec.NodeServer.
func (s *Server) NodeStageVolume(ctx context.Context, req *spec.NodeStageVolumeRequest) (*spec.NodeStageVolumeResponse, error) {
	id, path := req.GetVolumeId(), req.GetStagingTargetPath()
	if err := required(id, "a volume ID", path, "a staging target path"); err != nil {
		return nil, err
	}
	a, err := accessOf(req.GetVolumeCapability())
	if err != nil {
		return nil, err
	}
	st, err := s.eng.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	if err := a.fits(st.FSType); err != nil {
		return nil, err
	}
	if _, err := s.eng.AttachFor(ctx, id, ledger.Hold{Kind: ledger.CSIStage, ID: path}); err != nil {
		return nil, err
	}
	return &spec.NodeStageVolumeResponse{}, nil
}

// NodeUnstageVolume implements spec.NodeServer.
func (s *Server) NodeUnstageVolume(ctx context.Context, req *spec.NodeUnstageVolumeRequest) (*spec.NodeUnstageVolumeResponse, error) {
	id, path := req.GetVolumeId(), req.GetStagingTargetPath()
	if err := required(id, "a volume ID", path, "a staging target path"); err != nil {
		return nil, err
	}
	if err := s.release(ctx, id, ledger.Hold{Kind: ledger.CSIStage, ID: path}); err != nil {
		return nil, err
	}
	return &spec.NodeUnstageVolumeResponse{}, nil
}

// release releases hold h of a volume if it holds it.
func (s *Server) release(ctx context.Context, id string, h ledger.Hold) error {
	holds, err := s.holds(ctx, id)
	if err != nil || !slices.Contains(holds, h) {
		return err
	}
	return s.eng.Unmount(ctx, id, h)
}

// NodePublishVolume implements spec.NodeServer.
func (s *Server) NodePublishVolume(ctx context.Context, req *spec.NodePublishVolumeRequest) (*spec.NodePublishVolumeResponse, error) {
	id, target := req.GetVolumeId(), req.GetTargetPath()
	if err := required(id, "a volume ID", target, "a target path"); err != nil {
		return nil, err
	}
	a, err := accessOf(req.GetVolumeCapability())
	if err != nil {
		return nil, err
	}
	opts := a.opts
	if (req.GetReadonly() || a.readOnly) && !slices.Contains(opts, "ro") {
		opts = append(slices.Clone(opts), "ro")
	}
	h := ledger.Hold{Kind: ledger.CSI, ID: target}
	if a.block {
		h.Kind = ledger.CSIBlock
	}
	holds, err := s.holds(ctx, id)
	if err != nil {
		return nil, err
	}
	if slices.Contains(holds, h) {
		if done, err := s.published(target, slices.Contains(opts, "ro")); done || err != nil {
			return &spec.NodePublishVolumeResponse{}, err
		}
	}
	if a.alone {
		if i := slices.IndexFunc(holds, func(o ledger.Hold) bool { return o != h && o.Kind != ledger.CSIStage }); i >= 0 {
			return nil, status.Errorf(codes.FailedPrecondition, "volume %s is in use by %s, and its access mode (single-node single-writer) allows one publication", id, holds[i])
		}
	}
	if a.fsType != "" && !a.block {
		st, err := s.eng.Get(ctx, id)
		if err != nil {
			return nil, err
		}
		if err := a.fits(st.FSType); err != nil {
			return nil, err
		}
	}
	var source string
	if a.block {
		source, err = s.eng.AttachFor(ctx, id, h)
	} else {
		source, err = s.eng.Mount(ctx, id, h, false)
	}
	if err != nil {
		return nil, err
	}
	if err := s.os.Bind(source, target, opts); err != nil {
		if uerr := s.eng.Unmount(ctx, id, h); uerr != nil {
			err = errors.Join(err, uerr)
		}
		return nil, fmt.Errorf("publish volume %s: %w", id, err)
	}
	return &spec.NodePublishVolumeResponse{}, nil
}

// published tells whether a publication is bound at target already, and
// refuses one bound with another read-only flag.
func (s *Server) published(target string, readOnly bool) (bool, error) {
	bound, err := s.os.IsMountPoint(target)
	if err != nil || !bound {
		return false, err
	}
	ro, err := s.os.IsReadOnly(target)
	if err != nil {
		return false, err
	}
	if ro != readOnly {
		return false, status.Errorf(codes.AlreadyExists, "published at %s already, with read-only %v", target, ro)
	}
	return true, nil
}

// NodeUnpublishVolume implements spec.NodeServer; the volume's staging
// goes with its last publication.
func (s *Server) NodeUnpublishVolume(ctx context.Context, req *spec.NodeUnpublishVolumeRequest) (*spec.NodeUnpublishVolumeResponse, error) {
	id, target := req.GetVolumeId(), req.GetTargetPath()
	if err := required(id, "a volume ID", target, "a target path"); err != nil {
		return nil, err
	}
	if err := s.os.Unbind(target); err != nil {
		return nil, err
	}
	for _, kind := range []ledger.Kind{ledger.CSI, ledger.CSIBlock} {
		if err := s.release(ctx, id, ledger.Hold{Kind: kind, ID: target}); err != nil {
			return nil, err
		}
	}
	if err := s.unstageUnpublished(ctx, id); err != nil {
		return nil, err
	}
	return &spec.NodeUnpublishVolumeResponse{}, nil
}

// unstageUnpublished releases the stagings of a volume that has no
// publication left on this host.
func (s *Server) unstageUnpublished(ctx context.Context, id string) error {
	holds, err := s.holds(ctx, id)
	if err != nil || slices.ContainsFunc(holds, isPublication) {
		return err
	}
	for _, h := range holds {
		if h.Kind != ledger.CSIStage {
			continue
		}
		if err := s.eng.Unmount(ctx, id, h); err != nil {
			return err
		}
		s.logFor(ctx, id).Infof("unstaged from %s with its last publication", h.ID)
	}
	return nil
}

// Reconcile, once the engine has restored its state, forgets the
// publications whose bind is gone (the host restarted, or the bind was
// undone behind rexray's back) and unstages the volumes left without a
// publication, since swarmkit never unstages them. Serve runs it at start.
func (s *Server) Reconcile(ctx context.Context) error {
	held, err := s.eng.Held(ctx)
	if err != nil {
		return err
	}
	var errs []error
	for id, holds := range held {
		for _, h := range holds {
			if !isPublication(h) {
				continue
			}
			if bound, err := s.os.IsMountPoint(h.ID); err != nil || bound {
				errs = append(errs, err)
				continue
			}
			s.logFor(ctx, id).Warnf("%s is bound no more: releasing it", h)
			errs = append(errs, s.os.Unbind(h.ID), s.eng.Unmount(ctx, id, h))
		}
		if slices.ContainsFunc(holds, func(h ledger.Hold) bool { return h.Kind == ledger.CSIStage }) {
			errs = append(errs, s.unstageUnpublished(ctx, id))
		}
	}
	return errors.Join(errs...)
}

// NodeGetVolumeStats implements spec.NodeServer, for a path the volume is
// published at.
func (s *Server) NodeGetVolumeStats(ctx context.Context, req *spec.NodeGetVolumeStatsRequest) (*spec.NodeGetVolumeStatsResponse, error) {
	id, path := req.GetVolumeId(), req.GetVolumePath()
	if err := required(id, "a volume ID", path, "a volume path"); err != nil {
		return nil, err
	}
	holds, err := s.holds(ctx, id)
	if err != nil {
		return nil, err
	}
	i := slices.IndexFunc(holds, func(h ledger.Hold) bool { return isPublication(h) && h.ID == path })
	if i < 0 {
		if _, err := s.eng.Get(ctx, id); err != nil {
			return nil, err
		}
		return nil, status.Errorf(codes.NotFound, "volume %s is not published at %s", id, path)
	}
	if holds[i].Kind == ledger.CSIBlock {
		st, err := s.eng.Get(ctx, id)
		if err != nil {
			return nil, err
		}
		return &spec.NodeGetVolumeStatsResponse{Usage: []*spec.VolumeUsage{{Unit: spec.VolumeUsage_BYTES, Total: st.Size}}}, nil
	}
	u, err := s.os.UsageOf(path)
	if err != nil {
		return nil, err
	}
	return &spec.NodeGetVolumeStatsResponse{Usage: []*spec.VolumeUsage{
		{Unit: spec.VolumeUsage_BYTES, Total: u.Bytes, Used: u.UsedBytes, Available: u.FreeBytes},
		{Unit: spec.VolumeUsage_INODES, Total: u.Inodes, Used: u.UsedInodes, Available: u.FreeInodes},
	}}, nil
}

// required refuses the first of its (value, what) pairs whose value is
// empty, naming what.
func required(pairs ...string) error {
	for i := 0; i+1 < len(pairs); i += 2 {
		if pairs[i] == "" {
			return invalid("%s is required", pairs[i+1])
		}
	}
	return nil
}
