package engine

import (
	"context"
	"errors"
	"fmt"

	"github.com/docker/go-units"

	"github.com/rexray/rexray/drivers"
	"github.com/rexray/rexray/mount"
)

// Resize grows a volume to size bytes while containers may use it: its
// platform grows the blocks, then its filesystem grows online where it is
// mounted: on this host now, on the host holding it as soon as that host
// sees it (GrowthWatcher), or at its next mount anywhere. Shrinking is
// refused.
func (e *Engine) Resize(ctx context.Context, name string, size int64) (Status, error) {
	ctx, done, err := e.begin(ctx, "resize", name)
	if err != nil {
		return Status{}, fmt.Errorf("resize volume %s: %w", name, err)
	}
	defer done()
	v, err := e.lookup(ctx, name)
	if err != nil {
		return Status{}, fmt.Errorf("resize volume %s: %w", name, err)
	}
	if size < v.Size {
		return Status{}, drivers.Invalid("resize volume %s: it is %s (%d bytes); shrinking is refused: give a size of at least that", name, units.BytesSize(float64(v.Size)), v.Size)
	}
	if err := mount.CheckSize(v.FSType, size); v.FSType != "" && err != nil {
		return Status{}, drivers.Invalid("resize volume %s: %v", name, err)
	}
	x, err := drivers.As[drivers.Expander](e.serviceOf(v).Driver, drivers.CapExpand)
	if err != nil {
		return Status{}, fmt.Errorf("resize volume %s: %w", name, err)
	}
	grown, err := x.Expand(ctx, name, size)
	if err != nil {
		return Status{}, fmt.Errorf("resize volume %s: %w", name, err)
	}
	grown.Service = v.Service
	if err := e.led.PutVolume(withoutDevice(grown)); err != nil {
		return Status{}, fmt.Errorf("resize volume %s: %w", name, err)
	}
	if err := e.growFS(ctx, grown); err != nil {
		return Status{}, fmt.Errorf("resize volume %s: %w", name, err)
	}
	e.logFor(ctx, name).Infof("grown from %s to %s", units.BytesSize(float64(v.Size)), units.BytesSize(float64(grown.Size)))
	return e.Get(ctx, name)
}

// GrowFS grows the filesystem of a volume mounted here to its device's
// size, after the device was made as large as the volume now is: what a
// CSI node does after its controller grew the volume.
func (e *Engine) GrowFS(ctx context.Context, name string) (Status, error) {
	ctx, done, err := e.begin(ctx, "grow", name)
	if err != nil {
		return Status{}, fmt.Errorf("grow volume %s: %w", name, err)
	}
	defer done()
	v, err := e.lookup(ctx, name)
	if err != nil {
		return Status{}, fmt.Errorf("grow volume %s: %w", name, err)
	}
	if x, ok := e.serviceOf(v).Driver.(drivers.Expander); ok {
		// The same size: this host's device takes the volume's size.
		if v, err = x.Expand(ctx, name, v.Size); err != nil {
			return Status{}, fmt.Errorf("grow volume %s: %w", name, err)
		}
	}
	if err := e.growFS(ctx, v); err != nil {
		return Status{}, fmt.Errorf("grow volume %s: %w", name, err)
	}
	return e.Get(ctx, name)
}

// growFS grows v's filesystem if it is mounted on this host.
func (e *Engine) growFS(ctx context.Context, v drivers.Volume) error {
	mounted, err := e.mnt.IsMounted(v.Name)
	if err != nil || !mounted {
		return err
	}
	if v.Device == "" {
		return fmt.Errorf("it is mounted here, but its platform shows no device of it on this host")
	}
	if err := e.growMapping(ctx, v); err != nil {
		return err
	}
	return e.mnt.Grow(ctx, e.fsDevice(v), v.Name)
}

// grownElsewhere grows the filesystem of a volume this host holds that
// another host grew: its driver has grown the device already.
func (e *Engine) grownElsewhere(name string) {
	ctx, done, err := e.begin(context.Background(), "grow", name)
	if err != nil {
		e.log.WithField("volume", name).Errorf("grow its filesystem: %v", err)
		return
	}
	defer done()
	log := e.logFor(ctx, name)
	v, err := e.driverFor(ctx, name).Inspect(ctx, name)
	if err == nil {
		err = e.growFS(ctx, v)
	}
	if err != nil {
		log.Errorf("grown by another host, its filesystem could not follow here: %v", err)
		return
	}
	log.Infof("grown by another host to %s: its filesystem grew here", units.BytesSize(float64(v.Size)))
}

// mountAt mounts v's device as spec says. A filesystem that could not be
// grown to its volume's new size is still mounted, with a warning: the
// data is there, the new room not yet.
func (e *Engine) mountAt(ctx context.Context, dev, name string, spec mount.Spec) (string, error) {
	path, err := e.mnt.Mount(ctx, dev, name, spec)
	var grow *mount.GrowError
	if errors.As(err, &grow) {
		e.logFor(ctx, name).Warnf("its volume grew, and its filesystem could not grow with it: %v", err)
		return path, nil
	}
	return path, err
}

func withoutDevice(v drivers.Volume) drivers.Volume {
	v.Device = ""
	return v
}
