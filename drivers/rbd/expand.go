package rbd

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/docker/go-units"

	"github.com/rexray/rexray/drivers"
)

// Expand implements drivers.Expander: `rbd resize` grows the image, then
// this host's device of it, if attached here, takes the new size (krbd and
// rbd-nbd follow the image's header by themselves; rbd-fuse's file follows
// it and its loop device is grown). Shrinking is refused: rbd resize is
// never given --allow-shrink.
func (d *Driver) Expand(ctx context.Context, name string, size int64) (drivers.Volume, error) {
	if err := drivers.ValidateName(name); err != nil {
		return drivers.Volume{}, err
	}
	pool, info, err := d.find(ctx, name)
	if err != nil {
		return drivers.Volume{}, fmt.Errorf("expand volume %s: %w", name, err)
	}
	if size < info.Size {
		return drivers.Volume{}, drivers.Invalid("expand volume %s: it is %s (%d bytes), and %s (%d bytes) would shrink it: shrinking is refused", name, units.BytesSize(float64(info.Size)), info.Size, units.BytesSize(float64(size)), size)
	}
	if size > info.Size {
		d.memo.forget(ctx, name)
		if _, err := d.ceph.Run(ctx, "rbd", "resize", "--no-progress", spec(pool, name), "--size", strconv.FormatInt(size, 10)+"B"); err != nil {
			return drivers.Volume{}, fmt.Errorf("expand volume %s: %w", name, err)
		}
	}
	if g, ok := d.att.(grower); ok {
		if err := g.Grow(ctx, pool, name, size); err != nil {
			return drivers.Volume{}, fmt.Errorf("expand volume %s: %w", name, err)
		}
	}
	v, err := d.Inspect(ctx, name)
	if err != nil {
		return v, fmt.Errorf("expand volume %s: %w", name, err)
	}
	return v, nil
}

// grower is an attacher whose device does not follow its image's size by
// itself: Grow makes this host's device of pool/image, if any, size bytes.
type grower interface {
	Grow(ctx context.Context, pool, image string, size int64) error
}

// growthSeer is an attacher that sees, on this host alone, which of its
// devices a resize elsewhere grew: Grown lists those images, once their
// devices have the new size.
type growthSeer interface {
	Grown(ctx context.Context) ([][2]string, error)
}

// growthEvery is how often WatchGrowth looks: a volume grown on another
// host shows its new room in this host's containers within it.
const growthEvery = 2 * time.Second

// WatchGrowth implements drivers.GrowthWatcher. It asks nothing of the
// cluster: the devices of the images attached here tell.
func (d *Driver) WatchGrowth(ctx context.Context, grown func(name string)) {
	g, ok := d.att.(growthSeer)
	if !ok {
		return
	}
	t := time.NewTicker(growthEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		imgs, err := g.Grown(ctx)
		if err != nil && ctx.Err() == nil {
			d.log.Warnf("look for volumes grown on other hosts: %v", err)
		}
		for _, pi := range imgs {
			grown(pi[1])
		}
	}
}
