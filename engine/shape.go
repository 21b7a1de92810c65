package engine

import (
	"context"
	"fmt"
	"maps"
	"os"
	"strconv"
	"strings"

	"github.com/rexray/rexray/drivers"
	"github.com/rexray/rexray/mount"
)

// specOf is how this host makes and mounts v, as fsType, from v's record.
// The record is the platform's, shared by every host: input, checked
// again here before any of it reaches a tool or a syscall.
func specOf(v drivers.Volume, fsType string, content mount.Content) (mount.Spec, error) {
	// Mount checks the options against the allowlist of the filesystem
	// it finds or makes.
	spec := mount.Spec{FSType: fsType, Content: content, Owner: mount.Owner{UID: v.UID, GID: v.GID}, MkfsOpts: v.MkfsOpts, MountOpts: v.MountOpts}
	if err := mount.CheckID("uid", int64(v.UID)); err != nil {
		return spec, fmt.Errorf("the volume's record: %w", err)
	}
	if err := mount.CheckID("gid", int64(v.GID)); err != nil {
		return spec, fmt.Errorf("the volume's record: %w", err)
	}
	if v.Mode != "" {
		mode, err := mount.ParseMode(v.Mode)
		if err != nil {
			return spec, fmt.Errorf("the volume's record: %w", err)
		}
		spec.Owner.Mode = mode
	}
	return spec, nil
}

// remount mounts again a volume that was mounted a moment ago (after a
// restart, after a check): what is on its device is a filesystem.
// v is the named volume with its device.
func (e *Engine) remount(ctx context.Context, v drivers.Volume, name string) error {
	spec, err := specOf(v, v.FSType, mount.Existing)
	if err != nil {
		return err
	}
	dev, _, err := e.unlock(ctx, e.serviceOf(v).Driver, v, v.Device)
	if err == nil {
		_, err = e.mountAt(ctx, dev, name, spec)
	}
	return err
}

// describe adds to v's fields who owns its data folder and its mode, as
// a mount on this host makes it, and, while it is mounted here, how many
// bytes its filesystem has used and left (free: what a container may
// still write, without the blocks reserved for root).
func (e *Engine) describe(v *drivers.Volume) {
	fields := maps.Clone(v.Fields)
	if fields == nil {
		fields = map[string]string{}
	}
	mode := v.Mode
	if mode == "" {
		mode = mount.FormatMode(os.FileMode(e.cfg.LinuxFileMode))
	}
	fields["uid"], fields["gid"], fields["mode"] = strconv.Itoa(v.UID), strconv.Itoa(v.GID), mode
	if len(v.MkfsOpts) > 0 {
		fields["mkfsOpts"] = strings.Join(v.MkfsOpts, " ")
	}
	if len(v.MountOpts) > 0 {
		fields["mountOpts"] = strings.Join(v.MountOpts, ",")
	}
	fields["encrypted"] = strconv.FormatBool(v.Encrypted)
	if mounted, err := e.mnt.IsMounted(v.Name); err == nil && mounted {
		if u, err := e.mnt.Usage(v.Name); err == nil {
			fields["used"], fields["free"] = strconv.FormatInt(u.UsedBytes, 10), strconv.FormatInt(u.FreeBytes, 10)
		}
	}
	v.Fields = fields
}
