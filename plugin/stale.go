package plugin

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/rexray/rexray/mount"
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
	ids map[string]map[string]bool
}

func newInherited() *inherited { return &inherited{ids: map[string]map[string]bool{}} }

func (h *inherited) add(volume string, ids []string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, id := range ids {
		if h.ids[volume] == nil {
			h.ids[volume] = map[string]bool{}
		}
		h.ids[volume][id] = true
	}
}

// drop forgets one ID: a client sent a Mount or an Unmount for it.
func (h *inherited) drop(volume, id string) {
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
func (h *inherited) only(volume string, ids []string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	clients := dockerIDs(ids)
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
func dockerIDs(ids []string) []string {
	return slices.DeleteFunc(slices.Clone(ids), func(id string) bool {
		return id == AttachID || id == MountID || id == legacyID
	})
}

// usesOwnMount tells whether a hold in ids uses the plugin's own mount of
// the volume: then it cannot be unmounted to ask the kernel.
func usesOwnMount(ids []string) bool {
	return slices.Contains(ids, MountID) || slices.Contains(ids, legacyID)
}

// forgetStale drops the inherited mount IDs of a volume that no container
// mounts any more, and returns the IDs left. It is called with the
// volume's lock held. While the kernel says the filesystem is still in use
// somewhere, or cannot say, every ID is kept.
func (p *Plugin) forgetStale(ctx context.Context, name string, ids []string) ([]string, error) {
	if !p.inherited.only(name, ids) || usesOwnMount(ids) {
		return ids, nil
	}
	used, err := p.usedElsewhere(ctx, name)
	if err != nil || used {
		return ids, err
	}
	stale := dockerIDs(ids)
	for _, id := range stale {
		if _, _, err := p.st.RemoveMount(name, id); err != nil {
			return ids, fmt.Errorf("forget stale mount IDs: %w", err)
		}
		p.inherited.drop(name, id)
	}
	p.log.WithField("volume", name).Warnf("forgot %d mount ID(s) whose Unmount never came (%v): no mount of the volume is left in any namespace, so their containers are gone (removed while the plugin was disabled or down)", len(stale), stale)
	return slices.DeleteFunc(ids, func(id string) bool { return slices.Contains(stale, id) }), nil
}

// withoutStale is forgetStale for a caller that goes on with the IDs kept
// when the kernel cannot be asked.
func (p *Plugin) withoutStale(ctx context.Context, name string, ids []string) []string {
	left, err := p.forgetStale(ctx, name, ids)
	if err != nil {
		p.log.WithField("volume", name).Errorf("cannot tell whether its %d mount ID(s) are stale, keeping them: %v", len(ids), err)
	}
	return left
}

// usedElsewhere tells whether the volume's filesystem is mounted anywhere
// but in the plugin's own mount. That one is unmounted to ask, and mounted
// back at once when the answer is yes (or unknown); a container's mount is
// never touched. A volume whose device is not known cannot be judged and
// counts as used.
func (p *Plugin) usedElsewhere(ctx context.Context, name string) (bool, error) {
	v, err := p.driverFor(ctx, name).Inspect(ctx, name)
	if err != nil {
		return true, fmt.Errorf("is it in use: %w", err)
	}
	if v.Device == "" {
		return true, nil
	}
	mounted, err := p.mnt.IsMounted(name)
	if err != nil {
		return true, fmt.Errorf("is it in use: %w", err)
	}
	if mounted {
		if err := p.mnt.Unmount(ctx, name); err != nil {
			if still, serr := p.mnt.IsMounted(name); serr != nil || still {
				// Busy in the plugin's namespace or in a peer of its mount
				// on the host: in use.
				p.log.WithField("volume", name).Debugf("in use through the plugin's own mount: %v", err)
				return true, nil
			}
		}
	}
	busy, err := p.mnt.Busy(v.Device)
	if mounted && (busy || err != nil) {
		// It was mounted a moment ago: what is there is a filesystem.
		if _, merr := p.mnt.Mount(ctx, v.Device, name, v.FSType, mount.Existing); merr != nil {
			return true, errors.Join(err, fmt.Errorf("mount it again after asking whether it is in use: %w", merr))
		}
	}
	if err != nil {
		return true, fmt.Errorf("is it in use: %w", err)
	}
	return busy, nil
}
