package csi

import (
	"context"

	spec "github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/rexray/rexray/drivers"
	"github.com/rexray/rexray/engine"
	"github.com/rexray/rexray/mount"
)

// access is a volume capability, checked.
type access struct {
	block  bool
	fsType string   // asked for; "" leaves it to the volume
	opts   []string // the bind's mount options
	// readOnly: the mode only reads (SINGLE_NODE_READER_ONLY).
	readOnly bool
	// alone: one publication at a time (SINGLE_NODE_SINGLE_WRITER).
	alone bool
}

// accessOf checks a volume capability. Every mode is of one node: a
// volume is attached to one host at a time (its lease, or its lock on
// the platform, is what fences it), so no driver can serve several.
func accessOf(c *spec.VolumeCapability) (access, error) {
	var a access
	if c == nil {
		return a, invalid("a volume capability is required")
	}
	switch t := c.GetAccessType().(type) {
	case *spec.VolumeCapability_Block:
		a.block = true
	case *spec.VolumeCapability_Mount:
		if fs := t.Mount.GetFsType(); fs != "" {
			var err error
			if a.fsType, err = mount.ParseFSType(fs); err != nil {
				return a, invalid("volume capability: %v", err)
			}
		}
		if err := mount.CheckBindOptions(t.Mount.GetMountFlags()); err != nil {
			return a, invalid("volume capability: %v", err)
		}
		a.opts = t.Mount.GetMountFlags()
		if t.Mount.GetVolumeMountGroup() != "" {
			return a, invalid("volume capability: volume_mount_group is not supported")
		}
	default:
		return a, invalid("volume capability: an access type (mount or block) is required")
	}
	switch m := c.GetAccessMode().GetMode(); m {
	case spec.VolumeCapability_AccessMode_SINGLE_NODE_WRITER, spec.VolumeCapability_AccessMode_SINGLE_NODE_MULTI_WRITER:
	case spec.VolumeCapability_AccessMode_SINGLE_NODE_SINGLE_WRITER:
		a.alone = true
	case spec.VolumeCapability_AccessMode_SINGLE_NODE_READER_ONLY:
		a.readOnly = true
	default:
		return a, invalid("volume capability: access mode %s is not offered: a volume is attached to one host at a time; the single-node modes are", m)
	}
	return a, nil
}

// fits tells whether a volume whose filesystem is fsType ("" if it has
// none recorded) can be used as a asks.
func (a access) fits(fsType string) error {
	if !a.block && a.fsType != "" && fsType != "" && a.fsType != fsType {
		return invalid("the volume's filesystem is %s, not %s", fsType, a.fsType)
	}
	return nil
}

// GetPluginInfo implements spec.IdentityServer.
func (s *Server) GetPluginInfo(context.Context, *spec.GetPluginInfoRequest) (*spec.GetPluginInfoResponse, error) {
	return &spec.GetPluginInfoResponse{Name: PluginName, VendorVersion: s.version}, nil
}

// GetPluginCapabilities implements spec.IdentityServer: a controller,
// volumes reachable from every node (no topology), and expansion when
// every service's driver grows volumes: online unless one of them grows
// only volumes not in use.
func (s *Server) GetPluginCapabilities(context.Context, *spec.GetPluginCapabilitiesRequest) (*spec.GetPluginCapabilitiesResponse, error) {
	caps := []*spec.PluginCapability{{
		Type: &spec.PluginCapability_Service_{Service: &spec.PluginCapability_Service{Type: spec.PluginCapability_Service_CONTROLLER_SERVICE}},
	}}
	if engine.Capable[drivers.Expander](s.eng) {
		how := spec.PluginCapability_VolumeExpansion_ONLINE
		if engine.Any[drivers.OfflineExpander](s.eng) {
			how = spec.PluginCapability_VolumeExpansion_OFFLINE
		}
		caps = append(caps, &spec.PluginCapability{Type: &spec.PluginCapability_VolumeExpansion_{
			VolumeExpansion: &spec.PluginCapability_VolumeExpansion{Type: how}}})
	}
	return &spec.GetPluginCapabilitiesResponse{Capabilities: caps}, nil
}

// Probe implements spec.IdentityServer: ready once the engine has
// restored its state.
func (s *Server) Probe(context.Context, *spec.ProbeRequest) (*spec.ProbeResponse, error) {
	return &spec.ProbeResponse{Ready: wrapperspb.Bool(s.eng.Ready())}, nil
}

// ControllerGetCapabilities implements spec.ControllerServer, from what
// every service's driver can do. ControllerPublishVolume is not among
// them: every driver attaches a volume from the host that uses it, which
// NodeStageVolume does there.
func (s *Server) ControllerGetCapabilities(context.Context, *spec.ControllerGetCapabilitiesRequest) (*spec.ControllerGetCapabilitiesResponse, error) {
	rpcs := []spec.ControllerServiceCapability_RPC_Type{
		spec.ControllerServiceCapability_RPC_CREATE_DELETE_VOLUME,
		spec.ControllerServiceCapability_RPC_LIST_VOLUMES,
		spec.ControllerServiceCapability_RPC_CLONE_VOLUME,
		spec.ControllerServiceCapability_RPC_SINGLE_NODE_MULTI_WRITER,
	}
	if engine.Capable[drivers.Snapshotter](s.eng) {
		rpcs = append(rpcs, spec.ControllerServiceCapability_RPC_CREATE_DELETE_SNAPSHOT,
			spec.ControllerServiceCapability_RPC_LIST_SNAPSHOTS, spec.ControllerServiceCapability_RPC_GET_SNAPSHOT)
	}
	if engine.Capable[drivers.Capacitor](s.eng) {
		rpcs = append(rpcs, spec.ControllerServiceCapability_RPC_GET_CAPACITY)
	}
	if engine.Capable[drivers.Expander](s.eng) {
		rpcs = append(rpcs, spec.ControllerServiceCapability_RPC_EXPAND_VOLUME)
	}
	caps := make([]*spec.ControllerServiceCapability, len(rpcs))
	for i, t := range rpcs {
		caps[i] = &spec.ControllerServiceCapability{Type: &spec.ControllerServiceCapability_Rpc{Rpc: &spec.ControllerServiceCapability_RPC{Type: t}}}
	}
	return &spec.ControllerGetCapabilitiesResponse{Capabilities: caps}, nil
}

// NodeGetCapabilities implements spec.NodeServer.
func (s *Server) NodeGetCapabilities(context.Context, *spec.NodeGetCapabilitiesRequest) (*spec.NodeGetCapabilitiesResponse, error) {
	var caps []*spec.NodeServiceCapability
	rpcs := []spec.NodeServiceCapability_RPC_Type{
		spec.NodeServiceCapability_RPC_STAGE_UNSTAGE_VOLUME,
		spec.NodeServiceCapability_RPC_GET_VOLUME_STATS,
		spec.NodeServiceCapability_RPC_SINGLE_NODE_MULTI_WRITER,
	}
	if engine.Capable[drivers.Expander](s.eng) {
		rpcs = append(rpcs, spec.NodeServiceCapability_RPC_EXPAND_VOLUME)
	}
	for _, t := range rpcs {
		caps = append(caps, &spec.NodeServiceCapability{Type: &spec.NodeServiceCapability_Rpc{Rpc: &spec.NodeServiceCapability_RPC{Type: t}}})
	}
	return &spec.NodeGetCapabilitiesResponse{Capabilities: caps}, nil
}

// NodeGetInfo implements spec.NodeServer: no limit of volumes, no
// topology.
func (s *Server) NodeGetInfo(context.Context, *spec.NodeGetInfoRequest) (*spec.NodeGetInfoResponse, error) {
	return &spec.NodeGetInfoResponse{NodeId: s.node}, nil
}
