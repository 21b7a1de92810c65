package engine

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/rexray/rexray/drivers"
	"github.com/rexray/rexray/engine/events"
	"github.com/rexray/rexray/engine/fence"
	"github.com/rexray/rexray/engine/ledger"
	"github.com/rexray/rexray/engine/options"
	"github.com/rexray/rexray/mount"
)

// Mount mounts a volume for hold h, creating it first if implicit. The
// first hold attaches and mounts; later ones only count. A hold that
// writes the device (a CSI block publication) refuses it (ErrInUse).
func (e *Engine) Mount(ctx context.Context, name string, h ledger.Hold, implicit bool) (string, error) {
	ctx, done, err := e.begin(ctx, "mount", name)
	if err != nil {
		return "", fmt.Errorf("mount volume %s: %w", name, err)
	}
	defer done()

	v, err := e.lookup(ctx, name)
	if errors.Is(err, drivers.ErrNotFound) && implicit {
		err = e.create(ctx, name, options.Request{Opts: options.Implicit(e.cfg)})
		if err == nil {
			v, err = e.lookup(ctx, name)
		}
	}
	if err != nil {
		return "", fmt.Errorf("mount volume %s: %w", name, err)
	}
	if err := e.canHold(name, h); err != nil {
		return "", fmt.Errorf("mount volume %s: %w", name, err)
	}
	path, err := e.mount(ctx, v)
	if err != nil {
		return "", err
	}
	if err := e.record(ctx, name, h); err != nil {
		return "", fmt.Errorf("mount volume %s: %w", name, err)
	}
	e.inherited.drop(name, h) // its Unmount will come to this plugin
	e.emit(ctx, events.Event{Kind: events.Mount, Volume: name, Service: e.serviceOf(v).Name, Hold: h.String(), Detail: path})
	return path, nil
}

// mount attaches and mounts v unless it is mounted already.
func (e *Engine) mount(ctx context.Context, v drivers.Volume) (string, error) {
	mounted, err := e.mnt.IsMounted(v.Name)
	if err != nil {
		return "", fmt.Errorf("mount volume %s: %w", v.Name, err)
	}
	if mounted {
		return e.mnt.Path(v.Name), nil
	}
	if err := e.canUnlock(v); err != nil {
		return "", fmt.Errorf("mount volume %s: %w", v.Name, err)
	}
	drv := e.serviceOf(v).Driver
	dev, err := e.attachDevice(ctx, drv, v, "")
	if err != nil {
		return "", fmt.Errorf("mount volume %s: %w", v.Name, fence.HowToTakeOver(err))
	}
	fsDev, fresh, err := e.unlock(ctx, drv, v, dev)
	if err != nil {
		if derr := drv.Detach(ctx, v.Name); derr != nil {
			e.logFor(ctx, v.Name).Errorf("after a failed mount: %v", derr)
		}
		return "", fmt.Errorf("mount volume %s: %w", v.Name, err)
	}
	path, err := e.mountDevice(ctx, v, fsDev, fresh)
	if err != nil {
		if lerr := e.lock(ctx, v.Name); lerr != nil {
			e.logFor(ctx, v.Name).Errorf("after a failed mount: %v", lerr)
		}
		if derr := drv.Detach(ctx, v.Name); derr != nil {
			e.logFor(ctx, v.Name).Errorf("after a failed mount: %v", derr)
		}
		return "", fmt.Errorf("mount volume %s: %w", v.Name, err)
	}
	return path, nil
}

// mountDevice formats (when needed) and mounts an attached volume. The
// decision to format rests on the volume's record as lookup found it on
// its platform (another host may have formatted it, or made it anew, since
// this host catalogued it): a volume whose filesystem was recorded is
// never formatted again unless overwritefs asks for it. fresh tells that
// dev is an encrypted volume's mapping whose LUKS header was made just
// now: it holds nothing, though not zeros.
func (e *Engine) mountDevice(ctx context.Context, v drivers.Volume, dev string, fresh bool) (string, error) {
	overwrite, err := e.led.Overwrite(v.Name)
	if err != nil {
		return "", err
	}
	return e.mountAs(ctx, e.serviceOf(v).Driver, v, dev, overwrite, fresh)
}

// mountAs formats (when v's record allows it) and mounts v's device.
func (e *Engine) mountAs(ctx context.Context, drv drivers.Driver, v drivers.Volume, dev string, overwrite, fresh bool) (string, error) {
	content := e.content(ctx, drv, v, overwrite)
	if fresh {
		content = mount.Discard
	}
	fsType := v.FSType
	if fsType == "" {
		// Made outside rexray (a plain `rbd create`): a filesystem already
		// on it is found by the probe, else it gets the default one.
		fsType = e.cfg.DefaultFSType()
	}
	spec, err := specOf(v, fsType, content)
	if err != nil {
		return "", err
	}
	path, err := e.mountAt(ctx, dev, v.Name, spec)
	var nofs *mount.NoFilesystemError
	if errors.As(err, &nofs) {
		return "", unrecognised(v, fsType, dev, err)
	}
	if err != nil {
		return "", err
	}
	if v.Formatted.IsZero() {
		if err := e.recordFormat(ctx, drv, v); err != nil {
			e.mnt.Unmount(ctx, v.Name)
			return "", err
		}
	}
	if !overwrite {
		return path, nil
	}
	// overwritefs applies to the first mount only: later mounts keep data.
	if err := e.led.SetOverwrite(v.Name, false); err != nil {
		e.mnt.Unmount(ctx, v.Name)
		return "", err
	}
	return path, nil
}

// content is what Mount may assume of the volume's device.
//
// A volume with no record either way was made before the record existed.
// Blank, it was never mounted, and is formatted; with a filesystem, that
// is recorded. With data and no filesystem that can be recognised it may
// be a damaged one, or a first mkfs cut off: nothing says which, and
// formatting the one would destroy data that fsck could recover, so its
// mount is refused, saying how to check and how to start over.
func (e *Engine) content(ctx context.Context, drv drivers.Driver, v drivers.Volume, overwrite bool) mount.Content {
	switch {
	case !overwrite && !v.Formatted.IsZero():
		return mount.Existing
	case e.blank(ctx, drv, v.Name):
		return mount.Zeros
	case overwrite:
		return mount.Discard
	case v.Unformatted:
		return mount.Unknown
	}
	return mount.Existing
}

// blank tells whether the driver knows the volume was never written to.
func (e *Engine) blank(ctx context.Context, drv drivers.Driver, name string) bool {
	bc, ok := drv.(drivers.BlankChecker)
	if !ok {
		return false
	}
	blank, err := bc.Blank(ctx, name)
	if err != nil {
		e.logFor(ctx, name).Warnf("cannot tell whether it was ever written to: %v", err)
	}
	return blank
}

// recordFormat records, with the volume on its platform and in the
// catalogue, that it holds a filesystem now.
func (e *Engine) recordFormat(ctx context.Context, drv drivers.Driver, v drivers.Volume) error {
	fr, ok := drv.(drivers.FormatRecorder)
	if !ok {
		return nil
	}
	now := time.Now()
	if err := fr.RecordFormat(ctx, v.Name, now); err != nil {
		return err
	}
	v.Meta = v.Meta.FormatRecord(now)
	v.Device = ""
	return e.led.PutVolume(v)
}

// unrecognised is the error for a volume whose device holds no filesystem
// that can be recognised, and that is not formatted for it.
func unrecognised(v drivers.Volume, fsType, dev string, err error) error {
	why := "though its first mount made one (" + v.Formatted.UTC().Format(time.RFC3339) + "): it is damaged"
	if v.Formatted.IsZero() {
		why = "and it holds data but no record of a first format (it was made before rexray kept one): it may be a damaged filesystem"
	}
	target, where := dev, ""
	if img := v.Fields["image"]; img != "" {
		// A device is gone once the mount fails; the image stays.
		target, where = img, " (the volume's image in the store)"
	}
	check, repair, hint := mount.CheckCommands(fsType, target)
	return fmt.Errorf("%w, %s, and it is not formatted again: its data may well be recoverable. Check it with `%s`%s, repair it with `%s`%s; `rexray volume attach %s` gives it a device. To start over with an empty volume instead, remove it (`docker volume rm %s`) and create it again",
		err, why, check, where, repair, hint, v.Name, v.Name)
}

// Unmount releases hold h on a volume. The last hold out unmounts and
// detaches. A hold the ledger does not have is not an error.
func (e *Engine) Unmount(ctx context.Context, name string, h ledger.Hold) error {
	ctx, done, err := e.begin(ctx, "unmount", name)
	if err != nil {
		return fmt.Errorf("unmount volume %s: %w", name, err)
	}
	defer done()

	if holds, err := e.led.Holds(name); err == nil && len(holds) == 1 && holds[0] == h {
		return e.unmountLast(ctx, name, h)
	}
	left, removed, err := e.led.RemoveHold(name, h)
	if err != nil {
		return fmt.Errorf("unmount volume %s: %w", name, err)
	}
	if !removed {
		e.logFor(ctx, name).Warnf("unmount of unknown %s", h)
	} else {
		e.emit(ctx, events.Event{Kind: events.Unmount, Volume: name, Hold: h.String()})
	}
	e.inherited.drop(name, h)
	if left > 0 && !e.cfg.Ops.UnmountIgnoreUsedCount {
		holds, err := e.led.Holds(name)
		if err != nil {
			return fmt.Errorf("unmount volume %s: %w", name, err)
		}
		if len(e.withoutStale(ctx, name, holds)) > 0 {
			return e.unmountIfDeviceOnly(ctx, name)
		}
	}
	if err := e.release(ctx, name); err != nil {
		return fmt.Errorf("unmount volume %s: %w", name, err)
	}
	return nil
}

// unmountLast ends h, the volume's last hold, with its lock held: the
// ledger forgets h while the volume is unmounted, then it is detached.
// The two first steps wait on flushes of different files (the ledger's fdatasyncs, the
// filesystem's and its image's on unmount), so they overlap instead of
// adding up. A crash between them leaves one of two states, both of
// which Restore settles as the Unmount would have: a mount that no hold
// accounts for is released, and a hold on a volume mounted nowhere is
// forgotten. The Unmount returns only once both are done, its data on
// the store.
func (e *Engine) unmountLast(ctx context.Context, name string, h ledger.Hold) error {
	forgot := make(chan error, 1)
	go func() {
		_, _, err := e.led.RemoveHold(name, h)
		forgot <- err
	}()
	unmount, removeTarget := e.mnt.Unmount, func(string) error { return nil }
	if s, ok := e.mnt.(targetKeeper); ok {
		unmount, removeTarget = s.UnmountOnly, s.RemoveTarget
	}
	err := unmount(ctx, name)
	if ferr := <-forgot; ferr != nil {
		return fmt.Errorf("unmount volume %s: %w", name, errors.Join(ferr, err, removeTarget(name)))
	}
	e.emit(ctx, events.Event{Kind: events.Unmount, Volume: name, Hold: h.String()})
	e.inherited.drop(name, h)
	if err == nil {
		// The mount point is on the host's filesystem, the device's
		// image on the store's: neither step waits for the other.
		removed := make(chan error, 1)
		go func() { removed <- removeTarget(name) }()
		err = e.detach(ctx, name)
		err = errors.Join(err, <-removed)
	}
	if err != nil {
		return fmt.Errorf("unmount volume %s: %w", name, err)
	}
	e.inherited.clear(name)
	return nil
}

// targetKeeper is a Mounter whose Unmount comes in two steps (package
// mount): the unmount, then the removal of the empty mount point.
type targetKeeper interface {
	UnmountOnly(ctx context.Context, name string) error
	RemoveTarget(name string) error
}

// detach closes the volume's encrypted mapping, if any, and lets its
// device go, as the last steps of a release.
func (e *Engine) detach(ctx context.Context, name string) error {
	if err := e.lock(ctx, name); err != nil {
		return err
	}
	if err := e.driverFor(ctx, name).Detach(ctx, name); err != nil && !errors.Is(err, drivers.ErrNotFound) {
		return err
	}
	e.emit(ctx, events.Event{Kind: events.Detach, Volume: name})
	return nil
}

// release unmounts and detaches a volume and forgets its mount IDs.
func (e *Engine) release(ctx context.Context, name string) error {
	if err := e.mnt.Unmount(ctx, name); err != nil {
		return err
	}
	if err := e.detach(ctx, name); err != nil {
		return err
	}
	e.inherited.clear(name)
	return e.led.ClearHolds(name)
}
