package plugin

import (
	"context"
	"fmt"
	"time"

	"github.com/rexray/rexray/drivers"
	"github.com/rexray/rexray/mount"
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
func (p *Plugin) Restore(ctx context.Context) {
	defer close(p.ready)
	log := p.log.WithField("phase", "restore")

	if id, err := p.instanceID(ctx); err == nil {
		p.instance = id
	} else {
		log.Warnf("instance ID: %v", err)
	}

	if err := p.st.PruneRemoving(time.Now().Add(-removeMemory)); err != nil {
		log.Warnf("prune remove marks: %v", err)
	}
	p.detachOrphans(ctx)
	vols, err := p.listAll(ctx)
	if err != nil {
		// Serve from the persisted catalogue; Get must keep working.
		log.Errorf("cannot list volumes, serving the saved catalogue: %v", err)
		return
	}
	if err := p.st.ReplaceVolumes(vols); err != nil {
		log.Errorf("save catalogue: %v", err)
	}
	byName := make(map[string]drivers.Volume, len(vols))
	for _, v := range vols {
		byName[v.Name] = v
	}
	counts, err := p.st.MountedVolumes()
	if err != nil {
		log.Errorf("read ledger: %v", err)
		return
	}
	mounted, err := p.mnt.Mounted()
	if err != nil {
		log.Errorf("read mounts: %v", err)
		return
	}

	for name := range counts {
		if ids, err := p.st.Mounts(name); err == nil {
			p.inherited.add(name, dockerIDs(ids))
		}
	}
	for name := range counts {
		p.restoreHeld(ctx, byName[name], name, mounted[name] != "")
	}
	for name := range mounted {
		if counts[name] == 0 {
			log.WithField("volume", name).Warn("mounted without any container: releasing")
			p.releaseLogged(ctx, name)
		}
	}
	for _, v := range vols {
		if v.Device != "" && counts[v.Name] == 0 && mounted[v.Name] == "" {
			log.WithField("volume", v.Name).Warnf("attached as %s without any container: detaching", v.Device)
			p.releaseLogged(ctx, v.Name)
		}
	}
}

// restoreHeld handles a volume the ledger says containers hold. One still
// attached is held again (its lease renewed): a plugin restarted under
// running containers goes on as before, unless another host took the
// volume meanwhile, and then it is fenced here.
func (p *Plugin) restoreHeld(ctx context.Context, v drivers.Volume, name string, mounted bool) {
	log := p.log.WithField("volume", name)
	switch {
	case mounted && v.Device == "":
		return // mounted from a device this driver does not report
	case v.Name == "":
		log.Warn("ledger holds mounts of a volume that no longer exists: forgetting them")
	case v.Device != "":
		if _, err := p.serviceOf(v).Driver.Attach(ctx, name, false); err != nil {
			log.Errorf("cannot hold it again (%v): fencing it here", err)
			if err := p.fence(ctx, name); err != nil {
				log.Errorf("fence: %v", err)
			}
			return
		}
		ids, err := p.st.Mounts(name)
		if err != nil {
			log.Errorf("read ledger: %v", err)
			return
		}
		kept := p.withoutStale(ctx, name, ids)
		switch {
		case len(kept) == 0:
			log.Info("no container uses it any more: releasing")
			p.releaseLogged(ctx, name)
			return
		case len(kept) < len(ids):
			return // the operator's attach is left, which holds no mount
		case mounted:
			return
		case attachedOnly(kept):
			return // attached by the operator, never mounted
		}
		if _, err := p.mnt.Mount(ctx, v.Device, name, v.FSType, mount.Existing); err != nil {
			log.Errorf("mount again after restart: %v", err)
		} else {
			log.Info("mounted again after restart")
		}
		return
	default:
		log.Info("device gone (host restarted?): forgetting its mounts")
		// and the hold on it, which a host that restarted no longer has.
		if err := p.serviceOf(v).Driver.Detach(ctx, name); err != nil {
			log.Errorf("release: %v", err)
		}
	}
	p.inherited.clear(name)
	if err := p.st.ClearMounts(name); err != nil {
		log.Errorf("forget mounts: %v", err)
	}
}

// detachOrphans lets go of the devices this host bound to volumes whose
// image was since deleted from the store: nothing else leads to them, and
// they would stay bound for good.
func (p *Plugin) detachOrphans(ctx context.Context) {
	for _, s := range p.services {
		od, ok := s.Driver.(drivers.OrphanDetacher)
		if !ok {
			continue
		}
		orphans, err := od.DetachOrphans(ctx)
		if err != nil {
			p.log.Errorf("service %s: %v", s.Name, err)
		}
		for _, o := range orphans {
			log := p.log.WithField("volume", o.Volume)
			if o.Mounted {
				log.Warnf("its image was deleted from the store while attached as %s, whose filesystem is still mounted: it is detached at its last unmount", o.Device)
			} else {
				log.Warnf("its image was deleted from the store while attached: detached %s", o.Device)
			}
		}
	}
}

// instanceID is this host's ID, as the default service's platform names it.
func (p *Plugin) instanceID(ctx context.Context) (string, error) {
	if id, ok := p.services[0].Driver.(drivers.Identifier); ok {
		return id.InstanceID(ctx)
	}
	return p.cfg.Instance()
}

func (p *Plugin) releaseLogged(ctx context.Context, name string) {
	if err := p.release(ctx, name); err != nil {
		p.log.WithField("volume", name).Errorf("release: %v", err)
	}
}

// listAll lists every service's volumes. A name two stores hold (made
// behind rexray's back) is served from the first service only.
func (p *Plugin) listAll(ctx context.Context) ([]drivers.Volume, error) {
	var all []drivers.Volume
	seen := make(map[string]string)
	for _, s := range p.services {
		vols, err := s.Driver.List(ctx)
		if err != nil {
			return nil, fmt.Errorf("service %s: %w", s.Name, err)
		}
		for _, v := range vols {
			if first, dup := seen[v.Name]; dup {
				p.log.WithField("volume", v.Name).Errorf("held by services %s and %s: serving the one in %s", first, s.Name, first)
				continue
			}
			seen[v.Name] = s.Name
			v.Service = s.Name
			all = append(all, v)
		}
	}
	return all, nil
}
