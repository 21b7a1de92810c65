package virtualbox

import (
	"context"
	"fmt"
	"strings"

	"github.com/docker/go-units"

	"github.com/rexray/rexray/drivers"
)

// Expand implements drivers.Expander with IMedium_resize. VirtualBox
// locks a disk attached to a running machine for writing, and resizes
// only one no machine has: a volume in use is refused with what to do,
// and one that is not grows at once; its filesystem follows at its next
// mount. VirtualBox never shrinks a medium, and neither does Expand.
func (d *Driver) Expand(ctx context.Context, name string, size int64) (drivers.Volume, error) {
	if err := drivers.ValidateName(name); err != nil {
		return drivers.Volume{}, err
	}
	var v drivers.Volume
	err := d.do(ctx, func(o *op) error {
		m, err := d.find(ctx, o, name)
		if err != nil {
			return err
		}
		if size < m.size {
			return drivers.Invalid("it is %s (%d bytes), and %s (%d bytes) would shrink it: shrinking is refused", units.BytesSize(float64(m.size)), m.size, units.BytesSize(float64(size)), size)
		}
		if size > m.size {
			if err := d.resize(ctx, o, m, size); err != nil {
				return err
			}
			if m, err = d.find(ctx, o, name); err != nil {
				return err
			}
		}
		v, err = d.volumeHere(ctx, o, m)
		return err
	})
	if err != nil {
		return drivers.Volume{}, fmt.Errorf("expand volume %s: %w", name, err)
	}
	return v, nil
}

func (d *Driver) resize(ctx context.Context, o *op, m medium, size int64) error {
	if len(m.machines) > 0 {
		return fmt.Errorf("it is attached to machine %s, and VirtualBox resizes only a disk no running machine has: stop the containers that use it (so that it is detached), then resize it; its filesystem grows at its next mount",
			strings.Join(d.machineNames(ctx, o, m.machines), ", "))
	}
	progress, err := o.object(ctx, "IMedium_resize", p("_this", m.ref), p("logicalSize", size))
	if err != nil {
		return err
	}
	return o.wait(ctx, progress, "resize the disk image")
}

// ExpandsOffline implements drivers.OfflineExpander.
func (d *Driver) ExpandsOffline() {}
