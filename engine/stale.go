package engine

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/rexray/rexray/engine/events"
	"github.com/rexray/rexray/engine/ledger"
)

// Docker sends no Unmount for a container removed while the plugin was
// disabled or down, so the ledger can hold mount IDs of containers that are
// gone. The ledger alone cannot tell them from live ones; the kernel can: a
// container holds a volume through a bind in its own mount namespace, and a
// mounted filesystem, in any namespace, keeps its device busy (mount.Busy).
//
// Only IDs the ledger held when this plugin started (inherited) can have
// lost their Unmount: one added since belongs to a container that this
// plugin will hear from. Those are judged, and only while every Docker
// mount ID of the volume is inherited, so that no container being started
// on a volume this plugin just mounted ever has its mount taken away to
// ask; nor while a hold that uses the plugin's own mount is there.

// inherited is the set of Docker's mount IDs the ledger held at start, per
// volume, less those Mounted or Unmounted since.
type inherited struct {
	mu  sync.Mutex
	ids map[string]map[ledger.Hold]bool
}

func newInherited() *inherited { return &inherited{ids: map[string]map[ledger.Hold]bool{}} }

func (h *inherited) add(volume string, holds []ledger.Hold) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, id := range holds {
		if h.ids[volume] == nil {
			h.ids[volume] = map[ledger.Hold]bool{}
		}
		h.ids[volume][id] = true
	}
}

// drop forgets one hold: a client sent a Mount or an Unmount for it.
func (h *inherited) drop(volume string, id ledger.Hold) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.ids[volume], id)
	if len(h.ids[volume]) == 0 {
		delete(h.ids, volume)
	}
}

// clear forgets a volume's IDs: the ledger no longer holds any.
func (h *inherited) clear(volume string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.ids, volume)
}

// only tells whether every Docker mount ID of ids was inherited, and
// there is at least one.
func (h *inherited) only(volume string, holds []ledger.Hold) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	clients := dockerHolds(holds)
	if len(clients) == 0 {
		return false
	}
	for _, id := range clients {
		if !h.ids[volume][id] {
			return false
		}
	}
	return true
}

// dockerIDs are the holds of Docker's container mounts. The others stand
// for a wish that only its holder ends (the operator's attach and mount, a
// legacy client's mount, which mesos-module-dvdi unmounts when it decides
// to), not for a mount the kernel can vouch for.
func dockerHolds(holds []ledger.Hold) []ledger.Hold {
	return slices.DeleteFunc(slices.Clone(holds), func(h ledger.Hold) bool { return h.Kind != ledger.Docker })
}

// usesOwnMount tells whether a hold uses the plugin's own mount of the
// volume: then it cannot be unmounted to ask the kernel.
func usesOwnMount(holds []ledger.Hold) bool {
	return slices.ContainsFunc(holds, func(h ledger.Hold) bool {
		return h.Kind == ledger.OperatorMount || h.Kind == ledger.Legacy
	})
}

// forgetStale drops the inherited mount IDs of a volume that no container
// mounts any more, and returns the IDs left. It is called with the
// volume's lock held. While the kernel says the filesystem is still in use
// somewhere, or cannot say, every ID is kept.
func (e *Engine) forgetStale(ctx context.Context, name string, ids []ledger.Hold) ([]ledger.Hold, error) {
	if !e.inherited.only(name, ids) || usesOwnMount(ids) {
		return ids, nil
	}
	used, err := e.usedElsewhere(ctx, name)
	if err != nil || used {
		return ids, err
	}
	stale := dockerHolds(ids)
	for _, id := range stale {
		if _, _, err := e.led.RemoveHold(name, id); err != nil {
			return ids, fmt.Errorf("forget stale mount IDs: %w", err)
		}
		e.inherited.drop(name, id)
	}
	e.emit(ctx, events.Event{Kind: events.StaleHold, Volume: name, Hold: holdList(stale), Detail: "no mount of it is left in any namespace"})
	e.logFor(ctx, name).Warnf("forgot %d mount ID(s) whose Unmount never came (%v): no mount of the volume is left in any namespace, so their containers are gone (removed while the plugin was disabled or down)", len(stale), stale)
	return slices.DeleteFunc(ids, func(h ledger.Hold) bool { return slices.Contains(stale, h) }), nil
}

// withoutStale is forgetStale for a caller that goes on with the IDs kept
// when the kernel cannot be asked.
func (e *Engine) withoutStale(ctx context.Context, name string, ids []ledger.Hold) []ledger.Hold {
	left, err := e.forgetStale(ctx, name, ids)
	if err != nil {
		e.logFor(ctx, name).Errorf("cannot tell whether its %d mount ID(s) are stale, keeping them: %v", len(ids), err)
	}
	return left
}

// usedElsewhere tells whether the volume's filesystem is mounted anywhere
// but in the plugin's own mount. That one is unmounted to ask, and mounted
// back at once when the answer is yes (or unknown); a container's mount is
// never touched. A volume whose device is not known cannot be judged and
// counts as used.
func (e *Engine) usedElsewhere(ctx context.Context, name string) (bool, error) {
	v, err := e.driverFor(ctx, name).Inspect(ctx, name)
	if err != nil {
		return true, fmt.Errorf("is it in use: %w", err)
	}
	if v.Device == "" {
		return true, nil
	}
	mounted, err := e.mnt.IsMounted(name)
	if err != nil {
		return true, fmt.Errorf("is it in use: %w", err)
	}
	if mounted {
		if err := e.mnt.Unmount(ctx, name); err != nil {
			if still, serr := e.mnt.IsMounted(name); serr != nil || still {
				// Busy in the plugin's namespace or in a peer of its mount
				// on the host: in use.
				e.logFor(ctx, name).Debugf("in use through the plugin's own mount: %v", err)
				return true, nil
			}
		}
	}
	// A mapping holds its device: the filesystem is on the mapping.
	busy, err := e.mnt.Busy(e.fsDevice(v))
	if mounted && (busy || err != nil) {
		// It was mounted a moment ago: what is there is a filesystem.
		if merr := e.remount(ctx, v, name); merr != nil {
			return true, errors.Join(err, fmt.Errorf("mount it again after asking whether it is in use: %w", merr))
		}
	}
	if err != nil {
		return true, fmt.Errorf("is it in use: %w", err)
	}
	return busy, nil
}
