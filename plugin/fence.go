package plugin

import (
	"context"
	"errors"
	"fmt"
)

// watcher is a driver that keeps this host's hold on the volumes it
// attached (a lease in a shared store) and reports, through lost, a volume
// this host must give up: another host preempted it or its hold lapsed.
type watcher interface {
	Watch(ctx context.Context, lost func(name string, why error))
}

// watch runs every service's watcher until ctx ends.
func (p *Plugin) watch(ctx context.Context) {
	for _, s := range p.services {
		if w, ok := s.Driver.(watcher); ok {
			go w.Watch(ctx, func(name string, why error) { go p.giveUp(name, why) })
		}
	}
}

// giveUp fences a volume another host took, under the volume's lock.
func (p *Plugin) giveUp(name string, why error) {
	log := p.log.WithField("volume", name)
	log.Warnf("another host takes it over (%v): fencing it here", why)
	ctx, done, err := p.begin(context.Background(), "fence", name)
	if err != nil {
		log.Errorf("fence: %v", err)
		return
	}
	defer done()
	if err := p.fence(ctx, name); err != nil {
		log.Errorf("fence: %v", err)
		return
	}
	log.Warn("fenced: containers here that still use it get I/O errors")
}

// fence cuts this host off a volume: the filesystem is shut down before
// the device and the hold go, so nothing written here after that point
// reaches the volume, then the ledger forgets its mounts.
//
// A step that fails does not stop the next: this host has lost the volume
// either way (its hold lapsed or another host took it), and what is left
// here would only hold devices and mounts for nobody.
func (p *Plugin) fence(ctx context.Context, name string) error {
	err := p.mnt.Fence(ctx, name)
	if derr := p.driverFor(ctx, name).Detach(ctx, name); derr != nil {
		err = errors.Join(err, fmt.Errorf("release device: %w", derr))
	}
	return errors.Join(err, p.st.ClearMounts(name))
}
