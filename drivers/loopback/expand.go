package loopback

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/docker/go-units"

	"github.com/rexray/rexray/drivers"
	"github.com/rexray/rexray/drivers/loopback/storefs"
	"github.com/rexray/rexray/drivers/loopdev"
	"github.com/rexray/rexray/mount"
)

// Expand implements drivers.Expander: the image grows (a hole is added at
// its end), then its record, and this host's loop device of it, if any,
// takes the new size at once. A host that holds it elsewhere grows its
// device when WatchGrowth sees the image larger than it. The same size
// only makes this host's device as large as the image.
func (d *Driver) Expand(ctx context.Context, name string, size int64) (drivers.Volume, error) {
	if err := drivers.ValidateName(name); err != nil {
		return drivers.Volume{}, err
	}
	v, err := d.readMeta(name)
	if err != nil {
		return drivers.Volume{}, fmt.Errorf("expand volume %s: %w", name, err)
	}
	if size < v.Size {
		return drivers.Volume{}, drivers.Invalid("expand volume %s: it is %s (%d bytes), and %s (%d bytes) would shrink it: shrinking is refused", name, units.BytesSize(float64(v.Size)), v.Size, units.BytesSize(float64(size)), size)
	}
	if size > v.Size {
		if err := d.checkRoom(ctx, name, size-v.Size); err != nil {
			return drivers.Volume{}, fmt.Errorf("expand volume %s: %w", name, err)
		}
		if err := d.growImage(name, size); err != nil {
			return drivers.Volume{}, fmt.Errorf("expand volume %s: %w", name, err)
		}
		v.Size = size
		if err := d.vols.write(name, v); err != nil {
			return drivers.Volume{}, fmt.Errorf("expand volume %s: %w", name, err)
		}
	}
	got, err := d.Inspect(ctx, name)
	if err != nil {
		return got, fmt.Errorf("expand volume %s: %w", name, err)
	}
	if got.Device != "" {
		if _, err := d.growDevice(name, got.Device); err != nil {
			return got, fmt.Errorf("expand volume %s: %w", name, err)
		}
	}
	return got, nil
}

// growImage makes name's image size bytes, never smaller: a crash after
// it and before the record leaves an image larger than its record, which
// the next Expand makes good.
func (d *Driver) growImage(name string, size int64) error {
	f, err := storefs.OpenIn(d.cfg.VolumePath, d.imagePath(name), os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if st.Size() >= size {
		return nil
	}
	if err := f.Truncate(size); err != nil {
		return fmt.Errorf("grow image %s to %d bytes: %w", d.imagePath(name), size, err)
	}
	return f.Sync()
}

// growDevice grows dev, bound to name's image, to the image's size, and
// tells whether it grew.
func (d *Driver) growDevice(name, dev string) (bool, error) {
	id, err := d.imageID(name)
	if err != nil {
		return false, err
	}
	st, err := os.Stat(d.imagePath(name))
	if err != nil {
		return false, err
	}
	have, err := mount.DeviceSize(dev)
	if err != nil || have >= st.Size() {
		return false, err
	}
	// The device must still be this image's: it may have been detached
	// and bound to another since Inspect.
	if bound, err := loopdev.Bound(d.tag); err != nil || bound[id] != dev {
		return false, err
	}
	if err := loopdev.Grow(dev); err != nil {
		return false, err
	}
	return true, nil
}

// growthEvery is how often WatchGrowth looks: a grown volume's new room
// shows in its containers within it.
const growthEvery = 2 * time.Second

// WatchGrowth implements drivers.GrowthWatcher: every growthEvery, the
// loop devices of the volumes this host holds are grown to their images'
// sizes, which another host sharing the store may have grown.
func (d *Driver) WatchGrowth(ctx context.Context, grown func(name string)) {
	t := time.NewTicker(growthEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		held := d.held.names()
		if len(held) == 0 {
			continue
		}
		bound, err := loopdev.Bound(d.tag)
		if err != nil {
			continue
		}
		for _, name := range held {
			id, err := d.imageID(name)
			if err != nil || bound[id] == "" {
				continue
			}
			if ok, err := d.growDevice(name, bound[id]); err != nil {
				d.cfg.Log.WithField("volume", name).Warnf("grow its loop device to its image's size: %v", err)
			} else if ok {
				grown(name)
			}
		}
	}
}
