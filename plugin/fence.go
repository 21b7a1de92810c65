package plugin

import (
	"context"
	"errors"
	"fmt"

	"github.com/rexray/rexray/config"
	"github.com/rexray/rexray/drivers"
)

// watch runs every service's watcher until ctx ends.
func (p *Plugin) watch(ctx context.Context) {
	for _, s := range p.services {
		if w, ok := s.Driver.(drivers.Watcher); ok {
			go w.Watch(ctx, func(name string, why error) { go p.giveUp(name, why) })
		}
	}
}

// giveUp fences a volume another host took, under the volume's lock.
func (p *Plugin) giveUp(name string, why error) {
	log := p.log.WithField("volume", name)
	log.Warnf("another host takes it over (%v): fencing it here", why)
	// Before the lock: a call that holds it may be stuck on I/O that
	// only the cut ends.
	if f, ok := p.driverFor(context.Background(), name).(drivers.Fencer); ok {
		if err := f.Fence(context.Background(), name); err != nil {
			log.Errorf("fence: %v", err)
		}
	}
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
