package engine

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/rexray/rexray/drivers"
	"github.com/rexray/rexray/engine/events"
	"github.com/rexray/rexray/engine/keys"
)

// Snapshot is a snapshot with the service that holds it.
type Snapshot struct {
	drivers.Snapshot
	Service string `json:"service"`
}

// findSnapshot finds a snapshot in whichever service holds it.
func (e *Engine) findSnapshot(ctx context.Context, name string) (drivers.Snapshot, Service, error) {
	for _, s := range e.services {
		sn, ok := s.Driver.(drivers.Snapshotter)
		if !ok {
			continue
		}
		snap, err := sn.InspectSnapshot(ctx, name)
		if errors.Is(err, drivers.ErrSnapshotNotFound) {
			continue
		}
		if err != nil {
			return snap, s, fmt.Errorf("snapshot %s: %w", name, err)
		}
		return snap, s, nil
	}
	return drivers.Snapshot{}, Service{}, fmt.Errorf("snapshot %s: %w", name, drivers.ErrSnapshotNotFound)
}

// Snapshot finds a snapshot in whichever service holds it.
func (e *Engine) Snapshot(ctx context.Context, name string) (Snapshot, error) {
	if err := drivers.ValidateSnapshotName(name); err != nil {
		return Snapshot{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	snap, svc, err := e.findSnapshot(ctx, name)
	if err != nil {
		return Snapshot{}, err
	}
	return Snapshot{snap, svc.Name}, nil
}

// CreateSnapshot takes a snapshot of a volume, in the volume's service. A
// volume mounted on this host is frozen for the copy, so the snapshot is
// never torn. Snapshot names are unique across services, as volume names.
func (e *Engine) CreateSnapshot(ctx context.Context, volume, name string) (Snapshot, error) {
	if err := drivers.ValidateSnapshotName(name); err != nil {
		return Snapshot{}, fmt.Errorf("create snapshot: %w", err)
	}
	ctx, done, err := e.begin(ctx, "snapshot", volume)
	if err != nil {
		return Snapshot{}, fmt.Errorf("create snapshot %s: %w", name, err)
	}
	defer done()
	v, err := e.lookup(ctx, volume)
	if err != nil {
		return Snapshot{}, fmt.Errorf("create snapshot %s of volume %s: %w", name, volume, err)
	}
	if _, s, err := e.findSnapshot(ctx, name); err == nil {
		return Snapshot{}, fmt.Errorf("create snapshot %s: %w in service %s", name, drivers.ErrSnapshotExists, s.Name)
	}
	svc := e.serviceOf(v)
	sn, err := drivers.As[drivers.Snapshotter](svc.Driver, drivers.CapSnapshots)
	if err != nil {
		return Snapshot{}, fmt.Errorf("create snapshot %s of volume %s: service %s: %w", name, volume, svc.Name, err)
	}
	undo := func() {}
	if v.Encrypted {
		// The snapshot carries the volume's LUKS header: its key goes
		// with it, for a volume made from it after this one is gone.
		made, err := keys.Copy(e.keys.Path(volume), e.keys.SnapshotPath(name))
		if err != nil {
			return Snapshot{}, fmt.Errorf("create snapshot %s of volume %s: %w", name, volume, err)
		}
		if made {
			undo = func() { keys.Remove(e.keys.SnapshotPath(name)) }
		}
	}
	thaw, err := e.mnt.Freeze(volume)
	if err != nil {
		undo()
		return Snapshot{}, fmt.Errorf("create snapshot %s of volume %s: %w", name, volume, err)
	}
	start := time.Now()
	snap, err := sn.CreateSnapshot(ctx, volume, name)
	took := time.Since(start)
	if terr := thaw(); terr != nil {
		e.logFor(ctx, volume).Errorf("after a snapshot of it: %v", terr)
	}
	if err != nil {
		undo()
		return Snapshot{}, err
	}
	snap.Encrypted = v.Encrypted
	e.recatalogue(ctx, svc, volume)
	e.logFor(ctx, volume).Infof("snapshot %s taken", name)
	e.emit(ctx, events.Event{Kind: events.Snapshot, Volume: volume, Service: svc.Name, Detail: name, Bytes: snap.Size, Seconds: took.Seconds()})
	return Snapshot{snap, svc.Name}, nil
}

// Snapshots lists every service's snapshots.
func (e *Engine) Snapshots(ctx context.Context) ([]Snapshot, error) {
	var all []Snapshot
	for _, s := range e.services {
		sn, ok := s.Driver.(drivers.Snapshotter)
		if !ok {
			continue
		}
		snaps, err := sn.Snapshots(ctx)
		if err != nil {
			return nil, fmt.Errorf("service %s: %w", s.Name, err)
		}
		for _, snap := range snaps {
			all = append(all, Snapshot{snap, s.Name})
		}
	}
	return all, nil
}

// RemoveSnapshot removes a snapshot. Volumes made from it are copies and
// stay.
func (e *Engine) RemoveSnapshot(ctx context.Context, name string) error {
	snap, svc, err := e.findSnapshot(ctx, name)
	if err != nil {
		return fmt.Errorf("remove snapshot: %w", err)
	}
	if err := svc.Driver.(drivers.Snapshotter).RemoveSnapshot(ctx, name); err != nil {
		return err
	}
	e.forgetKey(ctx, name, e.keys.SnapshotPath(name))
	// Under the volume's lock, as every change to its catalogue record.
	if ctx, done, err := e.begin(ctx, "forget snapshot", snap.VolumeName); err == nil {
		e.recatalogue(ctx, svc, snap.VolumeName)
		done()
	}
	e.logFor(ctx, snap.VolumeName).Infof("snapshot %s removed", name)
	return nil
}

// recatalogue refreshes a volume's catalogue record from its driver, so
// Get shows its snapshots. The caller holds the volume's lock.
func (e *Engine) recatalogue(ctx context.Context, svc Service, name string) {
	v, err := svc.Driver.Inspect(ctx, name)
	if err != nil {
		if !errors.Is(err, drivers.ErrNotFound) {
			e.logFor(ctx, name).Warnf("refresh catalogue: %v", err)
		}
		return
	}
	v.Service = svc.Name
	if err := e.led.PutVolume(v); err != nil {
		e.logFor(ctx, name).Warnf("refresh catalogue: %v", err)
	}
}
