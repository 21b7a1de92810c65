package engine

import (
	"context"
	"errors"

	"github.com/rexray/rexray/drivers"
	"github.com/rexray/rexray/engine/events"
	"github.com/rexray/rexray/engine/fence"
)

// watch runs every service's Watcher until ctx ends.
func (e *Engine) watch(ctx context.Context) {
	for _, s := range e.services {
		if w, ok := s.Driver.(drivers.Watcher); ok {
			go w.Watch(ctx, func(name string, why error) { go e.giveUp(name, why) })
		}
		if w, ok := s.Driver.(drivers.GrowthWatcher); ok {
			go w.WatchGrowth(ctx, func(name string) { go e.grownElsewhere(name) })
		}
	}
}

// halter stops a mounted volume's writes at once, without a flush
// (package mount's Mounter).
type halter interface {
	Halt(name string) error
}

// giveUp fences a volume a Watcher reported lost: the cut before the
// volume's lock, the rest under it (package fence). A hold that is lapsing
// because the platform stopped answering has its writes stopped first,
// before the lock too: a call holding the lock may be stuck on that
// platform, and the fence's flush would be.
func (e *Engine) giveUp(name string, why error) {
	ctx := e.withLog(context.Background(), "fence", name)
	log := e.logFor(ctx, name)
	log.Warnf("another host takes it over (%v): fencing it here", why)
	e.emit(ctx, events.Event{Kind: events.LeaseLost, Volume: name, Detail: why.Error()})
	if h, ok := e.mnt.(halter); ok && errors.Is(why, drivers.ErrHoldLapsing) {
		if err := h.Halt(name); err != nil {
			log.Errorf("fence: %v", err)
		}
	}
	cutErr := fence.Cut(ctx, e.driverFor(ctx, name), name)
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
	e.emit(ctx, events.Event{Kind: events.Fence, Volume: name})
}

// fence runs every step, for a caller that holds the volume's lock.
func (e *Engine) fence(ctx context.Context, name string) error {
	err := errors.Join(fence.Cut(ctx, e.driverFor(ctx, name), name), e.shutDown(ctx, name))
	if err == nil {
		e.emit(ctx, events.Event{Kind: events.Fence, Volume: name})
	}
	return err
}

// shutDown is fence's steps 2 to 4.
func (e *Engine) shutDown(ctx context.Context, name string) error {
	err := fence.ShutDown(ctx, e.driverFor(ctx, name), lockingFS{e}, name)
	e.inherited.clear(name)
	return errors.Join(err, e.led.ClearHolds(name))
}

// lockingFS is the fence's Filesystem: the volume's filesystem shut down
// and unmounted, then its encrypted mapping closed (once its last user
// lets go), before its device is released.
type lockingFS struct{ e *Engine }

func (f lockingFS) Fence(ctx context.Context, name string) error {
	return errors.Join(f.e.mnt.Fence(ctx, name), f.e.lock(ctx, name))
}
