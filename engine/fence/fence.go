// Package fence cuts this host off a volume it lost: another host
// preempted it, or its hold lapsed, or after a restart it could not be held
// again. Whatever is left here must stop reaching the volume before the
// other host writes to it. Every driver goes through the same steps, in
// this order (docs/leases.md tells what each driver does at each):
//
//  1. Cut: a drivers.Fencer cuts the device off the platform at once. The
//     engine runs it without the volume's lock, since a call that holds the
//     lock may be stuck on I/O that only the cut ends (rbd: a blocklisted
//     client).
//  2. Shut the filesystem down, so nothing written here reaches the device
//     any more, and unmount it; close an encrypted volume's mapping.
//  3. Release the device and the hold on the platform (Detach).
//  4. Forget the volume's holds in this host's ledger (the engine's).
//
// A step that fails does not stop the next: this host has lost the volume
// either way, and what is left would only hold devices and mounts for
// nobody.
package fence

import (
	"context"
	"errors"
	"fmt"

	"github.com/rexray/rexray/config"
	"github.com/rexray/rexray/drivers"
)

// Filesystem shuts a volume's filesystem down and unmounts it (package
// mount's Mounter).
type Filesystem interface {
	Fence(ctx context.Context, name string) error
}

// Cut is step 1, for a driver that can.
func Cut(ctx context.Context, drv drivers.Driver, name string) error {
	f, ok := drv.(drivers.Fencer)
	if !ok {
		return nil
	}
	if err := f.Fence(ctx, name); err != nil {
		return fmt.Errorf("cut the device: %w", err)
	}
	return nil
}

// ShutDown is steps 2 and 3.
func ShutDown(ctx context.Context, drv drivers.Driver, fs Filesystem, name string) error {
	err := fs.Fence(ctx, name)
	if derr := drv.Detach(ctx, name); derr != nil && !errors.Is(derr, drivers.ErrNotFound) {
		err = errors.Join(err, fmt.Errorf("release device: %w", derr))
	}
	return err
}

// HowToTakeOver adds to a driver's "held by another host" the settings
// that take the volume over: preempting is what makes the other host fence.
func HowToTakeOver(err error) error {
	var held *drivers.HeldError
	if !errors.As(err, &held) {
		return err
	}
	takeover := ""
	if held.Takeover != "" {
		takeover = ", which " + held.Takeover
	}
	return fmt.Errorf("%w; to take it over, unmount it there or mount it with preempt: REXRAY_PREEMPT=true or %s_MOUNT_PREEMPT=true%s",
		err, config.OpsPrefix, takeover)
}
