package engine

import (
	"context"
	"fmt"
	"runtime/debug"
	"time"

	"github.com/rexray/rexray/drivers"
)

// Restore brings the catalogue and the mount ledger in line with what the
// store and the kernel really hold, then lets calls through. It runs after
// the socket listens: dockerd waits only ~10 s for the socket.
//
// The ledger decides what should be mounted, and the kernel whether its
// IDs still stand for containers (see forgetStale):
//   - IDs recorded, device still attached, and a filesystem on it mounted
//     in some namespace: the plugin was restarted under running
//     containers; mount again (if need be) so counts go on.
//   - IDs recorded, device still attached, mounted nowhere else: the
//     containers went while the plugin was disabled or down, and Docker
//     never sent their Unmount; forget them and release.
//   - IDs recorded, no device: the host rebooted; those containers are gone.
//   - mounted or attached with no IDs: a crash between steps; release.
//
// A device still bound to an image deleted from the store is detached,
// unless its filesystem is still mounted: then at its last unmount.
func (e *Engine) Restore(ctx context.Context) {
	defer func() {
		// What the restore read (every volume of every store, each one's
		// record and catalogue entry) is garbage once it ends. Given back
		// now, it does not stay resident, as the runtime's background
		// scavenger would keep it for minutes: at 10,000 volumes, about
		// half of the plugin's memory at ready.
		debug.FreeOSMemory()
		close(e.ready)
	}()
	log := e.log.WithField("phase", "restore")

	if id, err := e.instanceID(ctx); err == nil {
		e.instance = id
	} else {
		log.Warnf("instance ID: %v", err)
	}

	if err := e.led.PruneRemoving(time.Now().Add(-removeMemory)); err != nil {
		log.Warnf("prune remove marks: %v", err)
	}
	e.detachOrphans(ctx)
	vols, err := e.listAll(ctx)
	if err != nil {
		// Serve from the persisted catalogue; Get must keep working.
		log.Errorf("cannot list volumes, serving the saved catalogue: %v", err)
		return
	}
	if err := e.led.ReplaceVolumes(vols); err != nil {
		log.Errorf("save catalogue: %v", err)
	}
	byName := make(map[string]*drivers.Volume, len(vols))
	for i := range vols {
		byName[vols[i].Name] = &vols[i]
	}
	counts, err := e.led.HeldVolumes()
	if err != nil {
		log.Errorf("read ledger: %v", err)
		return
	}
	mounted, err := e.mnt.Mounted()
	if err != nil {
		log.Errorf("read mounts: %v", err)
		return
	}

	for name := range counts {
		if ids, err := e.led.Holds(name); err == nil {
			e.inherited.add(name, dockerHolds(ids))
		}
	}
	for name := range counts {
		var v drivers.Volume // none: the store no longer has it
		if p := byName[name]; p != nil {
			v = *p
		}
		e.restoreHeld(ctx, v, name, mounted[name] != "")
	}
	for name := range mounted {
		if counts[name] == 0 {
			log.WithField("volume", name).Warn("mounted without any container: releasing")
			e.releaseLogged(ctx, name)
		}
	}
	for _, v := range vols {
		if v.Device != "" && counts[v.Name] == 0 && mounted[v.Name] == "" {
			log.WithField("volume", v.Name).Warnf("attached as %s without any container: detaching", v.Device)
			e.releaseLogged(ctx, v.Name)
		}
	}
	e.closeStrays(ctx)
}

// restoreHeld handles a volume the ledger says containers hold. One still
// attached is held again (its lease renewed): a plugin restarted under
// running containers goes on as before, unless another host took the
// volume meanwhile, and then it is fenced here.
func (e *Engine) restoreHeld(ctx context.Context, v drivers.Volume, name string, mounted bool) {
	log := e.logFor(ctx, name)
	switch {
	case mounted && v.Device == "":
		return // mounted from a device this driver does not report
	case v.Name == "":
		log.Warn("ledger holds mounts of a volume that no longer exists: forgetting them")
		e.emitStale(ctx, name, "at start: the volume no longer exists")
	case v.Device != "":
		if _, err := e.serviceOf(v).Driver.Attach(ctx, name, false); err != nil {
			log.Errorf("cannot hold it again (%v): fencing it here", err)
			if err := e.fence(ctx, name); err != nil {
				log.Errorf("fence: %v", err)
			}
			return
		}
		ids, err := e.led.Holds(name)
		if err != nil {
			log.Errorf("read ledger: %v", err)
			return
		}
		kept := e.withoutStale(ctx, name, ids)
		switch {
		case len(kept) == 0:
			log.Info("no container uses it any more: releasing")
			e.releaseLogged(ctx, name)
			return
		case len(kept) < len(ids):
			return // the operator's attach is left, which holds no mount
		case mounted:
			return
		case deviceOnly(kept):
			return // held for its device alone, never mounted
		}
		if err := e.remount(ctx, v, name); err != nil {
			log.Errorf("mount again after restart: %v", err)
		} else {
			log.Info("mounted again after restart")
		}
		return
	default:
		log.Info("device gone (host restarted?): forgetting its mounts")
		e.emitStale(ctx, name, "at start: its device is gone (the host restarted?)")
		if err := e.lock(ctx, name); err != nil {
			log.Errorf("release: %v", err)
		}
		// and the hold on it, which a host that restarted no longer has.
		if err := e.serviceOf(v).Driver.Detach(ctx, name); err != nil {
			log.Errorf("release: %v", err)
		}
	}
	e.inherited.clear(name)
	if err := e.led.ClearHolds(name); err != nil {
		log.Errorf("forget mounts: %v", err)
	}
}

// detachOrphans lets go of the devices this host bound to volumes whose
// image was since deleted from the store: nothing else leads to them, and
// they would stay bound for good.
func (e *Engine) detachOrphans(ctx context.Context) {
	for _, s := range e.services {
		od, ok := s.Driver.(drivers.OrphanDetacher)
		if !ok {
			continue
		}
		orphans, err := od.DetachOrphans(ctx)
		if err != nil {
			e.log.Errorf("service %s: %v", s.Name, err)
		}
		for _, o := range orphans {
			log := e.logFor(ctx, o.Volume)
			if o.Mounted {
				log.Warnf("its image was deleted from the store while attached as %s, whose filesystem is still mounted: it is detached at its last unmount", o.Device)
			} else {
				log.Warnf("its image was deleted from the store while attached: detached %s", o.Device)
			}
		}
	}
}

// instanceID is this host's ID, as the default service's platform names it.
func (e *Engine) instanceID(ctx context.Context) (string, error) {
	if id, ok := e.services[0].Driver.(drivers.Identifier); ok {
		return id.InstanceID(ctx)
	}
	return e.cfg.Instance()
}

func (e *Engine) releaseLogged(ctx context.Context, name string) {
	if err := e.release(ctx, name); err != nil {
		e.logFor(ctx, name).Errorf("release: %v", err)
	}
}

// listAll lists every service's volumes. A name two stores hold (made
// behind rexray's back) is served from the first service only.
func (e *Engine) listAll(ctx context.Context) ([]drivers.Volume, error) {
	var all []drivers.Volume
	seen := make(map[string]string)
	for _, s := range e.services {
		vols, err := s.Driver.List(ctx)
		if err != nil {
			return nil, fmt.Errorf("service %s: %w", s.Name, err)
		}
		for _, v := range vols {
			if first, dup := seen[v.Name]; dup {
				e.logFor(ctx, v.Name).Errorf("held by services %s and %s: serving the one in %s", first, s.Name, first)
				continue
			}
			seen[v.Name] = s.Name
			v.Service = s.Name
			all = append(all, v)
		}
	}
	return all, nil
}
