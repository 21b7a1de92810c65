package engine

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/rexray/rexray/drivers"
	"github.com/rexray/rexray/engine/ledger"
	"github.com/rexray/rexray/engine/options"
)

// What the operator CLI (`rexray volume ...`) does goes through the same
// per-volume locks and ledger as Docker's calls, so the two never race.
var (
	// attachHold holds a volume attached by `rexray volume attach`.
	attachHold = ledger.Hold{Kind: ledger.OperatorAttach}
	// mountHold holds a volume mounted by `rexray volume mount`.
	mountHold = ledger.Hold{Kind: ledger.OperatorMount}
)

// VolumeInfo is a volume as the operator sees it: what the store holds and
// what this host does with it.
type VolumeInfo struct {
	drivers.Volume
	Device     string
	Holds      []ledger.Hold
	Mountpoint string
}

// Volumes lists every service's volumes, fresh from the stores.
func (e *Engine) Volumes(ctx context.Context) ([]VolumeInfo, error) {
	if err := e.waitReady(ctx); err != nil {
		return nil, err
	}
	vols, err := e.listAll(ctx)
	if err != nil {
		return nil, err
	}
	infos := make([]VolumeInfo, 0, len(vols))
	for _, v := range vols {
		info, err := e.info(v)
		if err != nil {
			return nil, err
		}
		infos = append(infos, info)
	}
	return infos, nil
}

// Volume inspects one volume, fresh from its store.
func (e *Engine) Volume(ctx context.Context, name string) (VolumeInfo, error) {
	if err := e.waitReady(ctx); err != nil {
		return VolumeInfo{}, err
	}
	v, err := e.lookup(ctx, name)
	if err != nil {
		return VolumeInfo{}, fmt.Errorf("volume %s: %w", name, err)
	}
	svc := e.serviceOf(v)
	v, err = svc.Driver.Inspect(ctx, name)
	if err != nil {
		return VolumeInfo{}, fmt.Errorf("volume %s: %w", name, err)
	}
	v.Service = svc.Name
	return e.info(v)
}

func (e *Engine) info(v drivers.Volume) (VolumeInfo, error) {
	holds, err := e.led.Holds(v.Name)
	if err != nil {
		return VolumeInfo{}, err
	}
	e.describe(&v)
	info := VolumeInfo{Volume: v, Device: v.Device, Holds: holds}
	if mounted, err := e.mnt.IsMounted(v.Name); err == nil && mounted {
		info.Mountpoint = e.mnt.Path(v.Name)
	}
	return info, nil
}

// CreateVolume creates a volume with Docker's create options, and
// inspects it.
func (e *Engine) CreateVolume(ctx context.Context, name string, opts map[string]string) (VolumeInfo, error) {
	if err := e.Create(ctx, name, opts); err != nil {
		return VolumeInfo{}, err
	}
	return e.Volume(ctx, name)
}

// Attach attaches a volume to this host without mounting it, and holds it
// attached until Detach.
func (e *Engine) Attach(ctx context.Context, name string) (VolumeInfo, error) {
	actx, done, err := e.begin(ctx, "attach", name)
	if err != nil {
		return VolumeInfo{}, fmt.Errorf("attach volume %s: %w", name, err)
	}
	_, err = e.attach(actx, name, attachHold)
	done()
	if err != nil {
		return VolumeInfo{}, fmt.Errorf("attach volume %s: %w", name, err)
	}
	return e.Volume(ctx, name)
}

// Detach releases what Attach holds. A volume containers (or `rexray
// volume mount`) still use is refused: detaching would pull the device
// from under them.
func (e *Engine) Detach(ctx context.Context, name string) error {
	ctx, done, err := e.begin(ctx, "detach", name)
	if err != nil {
		return fmt.Errorf("detach volume %s: %w", name, err)
	}
	defer done()
	if _, err := e.lookup(ctx, name); err != nil {
		return fmt.Errorf("detach volume %s: %w", name, err)
	}
	holds, err := e.led.Holds(name)
	if err != nil {
		return fmt.Errorf("detach volume %s: %w", name, err)
	}
	if others := slices.DeleteFunc(holds, func(h ledger.Hold) bool { return h == attachHold }); len(others) > 0 {
		return fmt.Errorf("detach volume %s: %w", name, inUseError("in use by %d mount(s); stop the containers (or run rexray volume unmount) first", len(others)))
	}
	if err := e.release(ctx, name); err != nil && !errors.Is(err, drivers.ErrNotFound) {
		return fmt.Errorf("detach volume %s: %w", name, err)
	}
	return nil
}

// MountVolume mounts a volume on this host for the operator and returns
// its path. It never creates the volume.
func (e *Engine) MountVolume(ctx context.Context, name string) (VolumeInfo, error) {
	if _, err := e.Mount(ctx, name, mountHold, false); err != nil {
		return VolumeInfo{}, err
	}
	return e.Volume(ctx, name)
}

// ResizeVolume grows a volume to size, as the size create option gives
// it (16, 512MiB, 2G), and inspects it.
func (e *Engine) ResizeVolume(ctx context.Context, name, size string) (VolumeInfo, error) {
	n, err := options.ParseSize(size)
	if err != nil {
		return VolumeInfo{}, drivers.Invalid("resize volume %s: %v", name, err)
	}
	if _, err := e.Resize(ctx, name, n); err != nil {
		return VolumeInfo{}, err
	}
	return e.Volume(ctx, name)
}

// UnmountVolume releases what MountVolume holds.
func (e *Engine) UnmountVolume(ctx context.Context, name string) error {
	holds, err := e.led.Holds(name)
	if err != nil {
		return fmt.Errorf("unmount volume %s: %w", name, err)
	}
	if !slices.Contains(holds, mountHold) {
		return fmt.Errorf("unmount volume %s: not mounted by rexray volume mount", name)
	}
	return e.Unmount(ctx, name, mountHold)
}

// unmountIfDeviceOnly unmounts a volume whose holds left hold only its
// device (the operator's attach, a CSI staging or block publication).
func (e *Engine) unmountIfDeviceOnly(ctx context.Context, name string) error {
	holds, err := e.led.Holds(name)
	if err != nil || !deviceOnly(holds) {
		return err
	}
	if err := e.mnt.Unmount(ctx, name); err != nil {
		return fmt.Errorf("unmount volume %s: %w", name, err)
	}
	return nil
}
