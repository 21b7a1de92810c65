package loopback

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/rexray/rexray/drivers"
	"github.com/rexray/rexray/drivers/loopback/storefs"
)

// CreateSnapshot implements drivers.Driver: a copy of the volume's image
// (a reflink where the store's filesystem has them), claimed and recorded
// as a volume is, so a crash part way lists no snapshot.
func (d *Driver) CreateSnapshot(ctx context.Context, volume, name string) (drivers.Snapshot, error) {
	if err := drivers.ValidateSnapshotName(name); err != nil {
		return drivers.Snapshot{}, fmt.Errorf("snapshot: %w", err)
	}
	v, err := d.readMeta(volume)
	if err == nil {
		err = d.snaps.check(name)
	}
	if err != nil {
		return drivers.Snapshot{}, fmt.Errorf("create snapshot %s of volume %s: %w", name, volume, err)
	}
	s := drivers.Snapshot{
		Name:       name,
		VolumeName: v.Name,
		Size:       v.Size,
		FSType:     v.FSType,
		CreatedAt:  time.Now().UTC().Truncate(time.Second),
		Encrypted:  v.Encrypted,
	}
	if err := d.fill(ctx, d.snaps, name, v.Size, d.imagePath(v.Name), drivers.ErrSnapshotExists, func() error { return d.snaps.write(name, s) }); err != nil {
		return drivers.Snapshot{}, fmt.Errorf("create snapshot %s of volume %s: %w", name, volume, err)
	}
	return s, nil
}

// Snapshots implements drivers.Driver.
func (d *Driver) Snapshots(ctx context.Context) ([]drivers.Snapshot, error) {
	names, err := d.snaps.names()
	if err != nil {
		return nil, fmt.Errorf("list snapshots: %w", err)
	}
	snaps := make([]drivers.Snapshot, 0, len(names))
	for _, name := range names {
		s, err := d.readSnapshot(name)
		var untrusted *storefs.UntrustedError
		if errors.Is(err, drivers.ErrSnapshotNotFound) || errors.As(err, &untrusted) {
			// Removed meanwhile, or not a snapshot of the store:
			// InspectSnapshot names the file that is not.
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("list snapshots: %w", err)
		}
		snaps = append(snaps, s)
	}
	return snaps, nil
}

// snapshotsByVolume maps each volume to its snapshots' names, sorted.
func (d *Driver) snapshotsByVolume() (map[string][]string, error) {
	snaps, err := d.Snapshots(context.Background())
	if err != nil {
		return nil, err
	}
	by := make(map[string][]string)
	for _, s := range snaps {
		by[s.VolumeName] = append(by[s.VolumeName], s.Name)
	}
	for _, names := range by {
		slices.Sort(names)
	}
	return by, nil
}

// InspectSnapshot implements drivers.Driver.
func (d *Driver) InspectSnapshot(ctx context.Context, name string) (drivers.Snapshot, error) {
	if err := drivers.ValidateSnapshotName(name); err != nil {
		return drivers.Snapshot{}, fmt.Errorf("snapshot: %w", err)
	}
	return d.readSnapshot(name)
}

func (d *Driver) readSnapshot(name string) (drivers.Snapshot, error) {
	var s drivers.Snapshot
	if err := d.snaps.read(name, &s, drivers.ErrSnapshotNotFound); err != nil {
		if errors.Is(err, drivers.ErrSnapshotNotFound) {
			return s, err
		}
		return s, fmt.Errorf("snapshot %w", err)
	}
	if s.Name != name {
		return s, fmt.Errorf("snapshot %s: metadata %s names snapshot %q", name, d.snaps.meta(name), s.Name)
	}
	return s, nil
}

// RemoveSnapshot implements drivers.Driver.
func (d *Driver) RemoveSnapshot(ctx context.Context, name string) error {
	if err := drivers.ValidateSnapshotName(name); err != nil {
		return fmt.Errorf("snapshot: %w", err)
	}
	found, err := d.snaps.remove(name)
	if err != nil {
		return fmt.Errorf("remove snapshot %s: %w", name, err)
	}
	if !found {
		return fmt.Errorf("remove snapshot %s: %w", name, drivers.ErrSnapshotNotFound)
	}
	return nil
}
