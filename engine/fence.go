package engine

import (
	"context"
	"errors"
	"fmt"

	"github.com/rexray/rexray/config"
	"github.com/rexray/rexray/drivers"
)

// Fencing: this host lost a volume (another host preempted it, or its
// hold lapsed), or could not hold it again after a restart. Whatever is
// left here must stop reaching the volume before the other host writes to
// it. Every driver goes through the same steps, in this order (written
// down, driver by driver, in docs/leases.md):
//
//  1. cut: a Fencer driver cuts the device off the platform at once,
//     without the volume's lock, since a call that holds the lock may be
//     stuck on I/O that only the cut ends (rbd: a blocklisted client);
//  2. the filesystem is shut down, so nothing written here reaches the
//     device any more, and unmounted (mount.Fence);
//  3. the device and the hold are released (Detach);
//  4. the ledger forgets the volume's holds.
//
// A step that fails does not stop the next: this host has lost the volume
// either way, and what is left would only hold devices and mounts for
// nobody.

// watch runs every service's Watcher until ctx ends.
func (e *Engine) watch(ctx context.Context) {
	for _, s := range e.services {
		if w, ok := s.Driver.(drivers.Watcher); ok {
			go w.Watch(ctx, func(name string, why error) { go e.giveUp(name, why) })
		}
	}
}

// giveUp fences a volume a Watcher reported lost.
func (e *Engine) giveUp(name string, why error) {
	ctx := e.withLog(context.Background(), "fence", name)
	log := e.logFor(ctx, name)
	log.Warnf("another host takes it over (%v): fencing it here", why)
	cutErr := e.cut(ctx, name)
	ctx, done, err := e.begin(ctx, "fence", name)
	if err != nil {
		log.Errorf("fence: %v", errors.Join(cutErr, err))
		return
	}
	defer done()
	if err := errors.Join(cutErr, e.shutDown(ctx, name)); err != nil {
		log.Errorf("fence: %v", err)
		return
	}
	log.Warn("fenced: containers here that still use it get I/O errors")
}

// fence runs every step, for a caller that holds the volume's lock.
func (e *Engine) fence(ctx context.Context, name string) error {
	return errors.Join(e.cut(ctx, name), e.shutDown(ctx, name))
}

// cut is step 1.
func (e *Engine) cut(ctx context.Context, name string) error {
	f, ok := e.driverFor(ctx, name).(drivers.Fencer)
	if !ok {
		return nil
	}
	if err := f.Fence(ctx, name); err != nil {
		return fmt.Errorf("cut the device: %w", err)
	}
	return nil
}

// shutDown is steps 2 to 4.
func (e *Engine) shutDown(ctx context.Context, name string) error {
	err := e.mnt.Fence(ctx, name)
	if derr := e.driverFor(ctx, name).Detach(ctx, name); derr != nil && !errors.Is(derr, drivers.ErrNotFound) {
		err = errors.Join(err, fmt.Errorf("release device: %w", derr))
	}
	e.inherited.clear(name)
	return errors.Join(err, e.led.ClearHolds(name))
}

// howToTakeOver adds to a driver's "held by another host" the settings
// that take the volume over.
func howToTakeOver(err error) error {
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
