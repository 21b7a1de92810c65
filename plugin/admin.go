package plugin

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/rexray/rexray/drivers"
)

// What the operator CLI (`rexray volume ...`) does goes through the same
// per-volume locks and ledger as Docker's calls, so the two never race.
// Its holds on a volume are ledger entries under these fixed mount IDs.
const (
	// AttachID holds a volume attached by `rexray volume attach`.
	AttachID = "rexray-cli-attach"
	// MountID holds a volume mounted by `rexray volume mount`.
	MountID = "rexray-cli-mount"
)

// VolumeInfo is a volume as the operator sees it: what the store holds and
// what this host does with it.
type VolumeInfo struct {
	drivers.Volume
	Device     string   `json:"device,omitempty"`
	MountIDs   []string `json:"mountIDs,omitempty"`
	Mountpoint string   `json:"mountpoint,omitempty"`
}

// Volumes lists every service's volumes, fresh from the stores.
func (p *Plugin) Volumes(ctx context.Context) ([]VolumeInfo, error) {
	if err := p.waitReady(ctx); err != nil {
		return nil, err
	}
	vols, err := p.listAll(ctx)
	if err != nil {
		return nil, err
	}
	infos := make([]VolumeInfo, 0, len(vols))
	for _, v := range vols {
		info, err := p.info(v)
		if err != nil {
			return nil, err
		}
		infos = append(infos, info)
	}
	return infos, nil
}

// Volume inspects one volume, fresh from its store.
func (p *Plugin) Volume(ctx context.Context, name string) (VolumeInfo, error) {
	if err := p.waitReady(ctx); err != nil {
		return VolumeInfo{}, err
	}
	v, err := p.lookup(ctx, name)
	if err != nil {
		return VolumeInfo{}, fmt.Errorf("volume %s: %w", name, err)
	}
	svc := p.serviceOf(v)
	v, err = svc.Driver.Inspect(ctx, name)
	if err != nil {
		return VolumeInfo{}, fmt.Errorf("volume %s: %w", name, err)
	}
	v.Service = svc.Name
	return p.info(v)
}

func (p *Plugin) info(v drivers.Volume) (VolumeInfo, error) {
	ids, err := p.st.Mounts(v.Name)
	if err != nil {
		return VolumeInfo{}, err
	}
	info := VolumeInfo{Volume: v, Device: v.Device, MountIDs: ids}
	if mounted, err := p.mnt.IsMounted(v.Name); err == nil && mounted {
		info.Mountpoint = p.mnt.Path(v.Name)
	}
	return info, nil
}

// CreateVolume creates a volume with Docker's create options.
func (p *Plugin) CreateVolume(ctx context.Context, name string, opts map[string]string) (VolumeInfo, error) {
	req, err := parseCreate(opts, p.defaults())
	if err != nil {
		return VolumeInfo{}, fmt.Errorf("create volume %s: %w", name, err)
	}
	cctx, done, err := p.begin(ctx, "create", name)
	if err != nil {
		return VolumeInfo{}, fmt.Errorf("create volume %s: %w", name, err)
	}
	err = p.create(cctx, name, req)
	done()
	if err != nil {
		return VolumeInfo{}, err
	}
	return p.Volume(ctx, name)
}

// Attach attaches a volume to this host without mounting it, and holds it
// attached until Detach.
func (p *Plugin) Attach(ctx context.Context, name string) (VolumeInfo, error) {
	actx, done, err := p.begin(ctx, "attach", name)
	if err != nil {
		return VolumeInfo{}, fmt.Errorf("attach volume %s: %w", name, err)
	}
	err = p.attach(actx, name)
	done()
	if err != nil {
		return VolumeInfo{}, fmt.Errorf("attach volume %s: %w", name, err)
	}
	return p.Volume(ctx, name)
}

func (p *Plugin) attach(ctx context.Context, name string) error {
	v, err := p.lookup(ctx, name)
	if err != nil {
		return err
	}
	drv := p.serviceOf(v).Driver
	if _, err := drv.Attach(ctx, name, p.cfg.Preempting()); err != nil {
		return howToTakeOver(err)
	}
	if _, _, err := p.st.AddMount(name, AttachID); err != nil {
		if ids, lerr := p.st.Mounts(name); lerr == nil && len(ids) == 0 {
			drv.Detach(ctx, name)
		}
		return err
	}
	return nil
}

// Detach releases what Attach holds. A volume containers (or `rexray
// volume mount`) still use is refused: detaching would pull the device
// from under them.
func (p *Plugin) Detach(ctx context.Context, name string) error {
	ctx, done, err := p.begin(ctx, "detach", name)
	if err != nil {
		return fmt.Errorf("detach volume %s: %w", name, err)
	}
	defer done()
	if _, err := p.lookup(ctx, name); err != nil {
		return fmt.Errorf("detach volume %s: %w", name, err)
	}
	ids, err := p.st.Mounts(name)
	if err != nil {
		return fmt.Errorf("detach volume %s: %w", name, err)
	}
	if others := slices.DeleteFunc(ids, func(id string) bool { return id == AttachID }); len(others) > 0 {
		return fmt.Errorf("detach volume %s: in use by %d mount(s); stop the containers (or run rexray volume unmount) first", name, len(others))
	}
	if err := p.release(ctx, name); err != nil && !errors.Is(err, drivers.ErrNotFound) {
		return fmt.Errorf("detach volume %s: %w", name, err)
	}
	return nil
}

// MountVolume mounts a volume on this host for the operator and returns
// its path. It never creates the volume.
func (p *Plugin) MountVolume(ctx context.Context, name string) (VolumeInfo, error) {
	if _, err := p.mountFor(ctx, name, MountID, false); err != nil {
		return VolumeInfo{}, err
	}
	return p.Volume(ctx, name)
}

// UnmountVolume releases what MountVolume holds.
func (p *Plugin) UnmountVolume(ctx context.Context, name string) error {
	ids, err := p.st.Mounts(name)
	if err != nil {
		return fmt.Errorf("unmount volume %s: %w", name, err)
	}
	if !slices.Contains(ids, MountID) {
		return fmt.Errorf("unmount volume %s: not mounted by rexray volume mount", name)
	}
	return p.unmountFor(ctx, name, MountID)
}

// unmountIfOnlyAttached unmounts a volume that the operator's attach is
// the last to hold: attach holds the device, not the filesystem.
func (p *Plugin) unmountIfOnlyAttached(ctx context.Context, name string) error {
	ids, err := p.st.Mounts(name)
	if err != nil || !attachedOnly(ids) {
		return err
	}
	if err := p.mnt.Unmount(ctx, name); err != nil {
		return fmt.Errorf("unmount volume %s: %w", name, err)
	}
	return nil
}

// attachedOnly tells whether the only hold on a volume is Attach's.
func attachedOnly(ids []string) bool {
	return len(ids) == 1 && ids[0] == AttachID
}
