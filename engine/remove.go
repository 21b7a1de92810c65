package engine

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/rexray/rexray/drivers"
	"github.com/rexray/rexray/engine/events"
)

// RemoveVolume removes a volume, within ctx.
func (e *Engine) Remove(ctx context.Context, name string) error {
	ctx, done, err := e.begin(ctx, "remove", name)
	if err != nil {
		return fmt.Errorf("remove volume %s: %w", name, err)
	}
	defer done()

	if e.cfg.Ops.RemoveDisable {
		// As REX-Ray: Docker forgets the volume, the data stays.
		e.logFor(ctx, name).Warn("remove disabled: keeping the volume's data")
		return nil
	}
	ids, err := e.led.Holds(name)
	if err != nil {
		return fmt.Errorf("remove volume %s: %w", name, err)
	}
	if len(ids) > 0 {
		if !e.cfg.Ops.RemoveForce {
			if ids = e.withoutStale(ctx, name, ids); len(ids) > 0 {
				return fmt.Errorf("remove volume %s: %w", name, inUseError("in use by %d container mount(s)", len(ids)))
			}
		}
		if err := e.release(ctx, name); err != nil {
			return fmt.Errorf("remove volume %s: %w", name, err)
		}
	}
	encrypted := e.encrypted(ctx, name)
	now := time.Now()
	retry, err := e.led.MarkRemoving(name, now, now.Add(-removeMemory))
	if err != nil {
		return fmt.Errorf("remove volume %s: %w", name, err)
	}
	if err := e.driverFor(ctx, name).Remove(ctx, name); errors.Is(err, drivers.ErrNotFound) {
		if err := e.goneAlready(name, retry, err); err != nil {
			return err
		}
	} else if err != nil {
		return err
	}
	if err := e.led.DeleteVolume(name); err != nil {
		return fmt.Errorf("remove volume %s: %w", name, err)
	}
	if encrypted {
		// Only now: a key removed before its volume would leave the
		// volume unreadable if its removal failed.
		e.forgetKey(ctx, name, e.keys.Path(name))
	}
	e.logFor(ctx, name).Info("removed")
	e.emit(ctx, events.Event{Kind: events.Remove, Volume: name})
	return nil
}

// removeMemory is how long a Remove that died part way is remembered, so
// that dockerd's retry of it succeeds.
const removeMemory = 24 * time.Hour

// goneAlready decides a Remove of a volume the store does not have
// (notFound): it succeeds for a volume this host catalogued (another host
// removed it) or began removing before (this call is dockerd's retry).
func (e *Engine) goneAlready(name string, retry bool, notFound error) error {
	_, known, err := e.led.Volume(name)
	if err != nil || known || retry {
		return err
	}
	// Never ours: leave no mark, so the next Remove says "not found" too.
	if err := e.led.ClearRemoving(name); err != nil {
		return err
	}
	return notFound
}

// encrypted tells whether the named volume is encrypted, as this host's
// catalogue or its platform knows it.
func (e *Engine) encrypted(ctx context.Context, name string) bool {
	if v, known, err := e.led.Volume(name); err == nil && known && v.Encrypted {
		return true
	}
	v, err := e.lookup(ctx, name)
	return err == nil && v.Encrypted
}
