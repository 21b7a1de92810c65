// Package memdriver is a test double of the driver contract: volumes,
// snapshots and holds kept in memory, in a Store that several instances
// (hosts) share, so that the engine's tests run without root, devices or a
// platform, in milliseconds. It is held to the same conformance suite as
// the real drivers (drivers/drivertest), so what it does is what they do.
//
// Its devices are not real: Attach returns a path such as
// /dev/memdriver/<instance>/<name> that nothing backs. The tests that use
// it pair it with a fake of the OS side (mkfs, mount) that takes such
// paths; Store.Write stands for what that fake writes to a volume.
package memdriver

import (
	"context"
	"fmt"
	"path"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/rexray/rexray/drivers"
)

// Name is the driver's registry name.
const Name = "memdriver"

// Store is one platform: the volumes and snapshots every instance made
// from it sees, and which instance holds each volume.
type Store struct {
	mu sync.Mutex
	// capacity is what the volumes and snapshots may take in all.
	capacity  int64
	volumes   map[string]*volume
	snapshots map[string]snapshot
	instances map[string]*Driver
}

type volume struct {
	drivers.Volume // Name, Size, Meta; Snapshots and Device are made per call
	holder         string
	written        bool
}

type snapshot struct {
	drivers.Snapshot
	written bool
}

// DefaultCapacity is a new Store's capacity: 1 TiB.
const DefaultCapacity = 1 << 40

// SetCapacity sets what the store's volumes and snapshots may take in all.
// It bounds only what Capacity answers: Create does not refuse more.
func (s *Store) SetCapacity(bytes int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.capacity = bytes
}

// NewStore is an empty platform.
func NewStore() *Store {
	return &Store{capacity: DefaultCapacity, volumes: map[string]*volume{}, snapshots: map[string]snapshot{}, instances: map[string]*Driver{}}
}

// Driver is the driver of the host instanceID; every call with one ID
// gives the same driver, as a host has one.
func (s *Store) Driver(instanceID string) *Driver {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, ok := s.instances[instanceID]
	if !ok {
		d = &Driver{s: s, instance: instanceID, wake: make(chan struct{}, 1)}
		s.instances[instanceID] = d
	}
	return d
}

// Write records that something wrote to the volume's blocks, as mkfs
// would through a device: it is no longer Blank, and copies of it are not.
func (s *Store) Write(name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.volumes[name]
	if !ok {
		return fmt.Errorf("write volume %s: %w", name, drivers.ErrNotFound)
	}
	v.written = true
	return nil
}

// Driver is one instance's view of a Store. It implements drivers.Driver
// and the Snapshotter, Expander, BlankChecker, FormatRecorder, NameLister,
// Capacitor and Watcher capabilities.
type Driver struct {
	s        *Store
	instance string
	// lost is what Watch has to report: volumes another instance took
	// from this one with force. wake tells Watch there is some.
	lost []lostVolume
	wake chan struct{}
}

type lostVolume struct {
	name string
	why  error
}

// Name implements drivers.Driver.
func (d *Driver) Name() string { return Name }

// device is the path Attach hands out on this instance: no real device.
func (d *Driver) device(name string) string { return path.Join("/dev/memdriver", d.instance, name) }

// view is v as this instance sees it; the caller holds the store's lock.
func (d *Driver) view(v *volume) drivers.Volume {
	out := v.Volume
	out.Snapshots = nil
	for _, s := range d.s.snapshots {
		if s.VolumeName == v.Name {
			out.Snapshots = append(out.Snapshots, s.Name)
		}
	}
	slices.Sort(out.Snapshots)
	if v.holder != "" {
		out.Fields = map[string]string{"attachedTo": v.holder}
	}
	if v.holder == d.instance {
		out.Device = d.device(v.Name)
	}
	return out
}

// with runs f on volume name under the store's lock.
func (d *Driver) with(name string, f func(v *volume) error) error {
	if err := drivers.ValidateName(name); err != nil {
		return err
	}
	d.s.mu.Lock()
	defer d.s.mu.Unlock()
	v, ok := d.s.volumes[name]
	if !ok {
		return fmt.Errorf("volume %s: %w", name, drivers.ErrNotFound)
	}
	return f(v)
}

// List implements drivers.Driver.
func (d *Driver) List(ctx context.Context) ([]drivers.Volume, error) {
	d.s.mu.Lock()
	defer d.s.mu.Unlock()
	vols := make([]drivers.Volume, 0, len(d.s.volumes))
	for _, v := range d.s.volumes {
		vols = append(vols, d.view(v))
	}
	slices.SortFunc(vols, func(a, b drivers.Volume) int { return strings.Compare(a.Name, b.Name) })
	return vols, nil
}

// Names implements drivers.NameLister.
func (d *Driver) Names(ctx context.Context) ([]string, error) {
	d.s.mu.Lock()
	defer d.s.mu.Unlock()
	names := make([]string, 0, len(d.s.volumes))
	for name := range d.s.volumes {
		names = append(names, name)
	}
	slices.Sort(names)
	return names, nil
}

// Inspect implements drivers.Driver.
func (d *Driver) Inspect(ctx context.Context, name string) (drivers.Volume, error) {
	var out drivers.Volume
	err := d.with(name, func(v *volume) error {
		out = d.view(v)
		return nil
	})
	return out, err
}

// Create implements drivers.Driver: an empty volume, or a copy of a
// volume or snapshot that keeps its source's size unless asked for more.
func (d *Driver) Create(ctx context.Context, name string, opts drivers.CreateOptions) (drivers.Volume, error) {
	if err := drivers.ValidateName(name); err != nil {
		return drivers.Volume{}, err
	}
	fail := func(err error) (drivers.Volume, error) {
		return drivers.Volume{}, fmt.Errorf("create volume %s: %w", name, err)
	}
	if opts.Pool != "" {
		return fail(drivers.Invalid("the %s driver has no pools (pool=%s)", Name, opts.Pool))
	}
	d.s.mu.Lock()
	defer d.s.mu.Unlock()
	if _, ok := d.s.volumes[name]; ok {
		return fail(drivers.ErrExists)
	}
	v := &volume{Volume: drivers.Volume{Name: name, Size: opts.Size, Meta: drivers.NewMeta(opts)}}
	var srcSize int64
	switch {
	case opts.FromVolume != "" && opts.FromSnapshot != "":
		return fail(drivers.Invalid("a volume is a copy of a volume or of a snapshot, not both"))
	case opts.FromVolume != "":
		src, ok := d.s.volumes[opts.FromVolume]
		if !ok {
			return fail(fmt.Errorf("source volume %s: %w", opts.FromVolume, drivers.ErrNotFound))
		}
		srcSize, v.written = src.Size, src.written
	case opts.FromSnapshot != "":
		src, ok := d.s.snapshots[opts.FromSnapshot]
		if !ok {
			return fail(fmt.Errorf("source snapshot %s: %w", opts.FromSnapshot, drivers.ErrSnapshotNotFound))
		}
		srcSize, v.written = src.Size, src.written
	}
	if v.Size == 0 {
		v.Size = srcSize
	}
	switch {
	case v.Size <= 0:
		return fail(drivers.Invalid("size must be positive"))
	case v.Size < srcSize:
		return fail(drivers.Invalid("size %d bytes is smaller than its source's %d: a copy cannot shrink", v.Size, srcSize))
	}
	d.s.volumes[name] = v
	return d.view(v), nil
}

// Remove implements drivers.Driver. A volume attached anywhere is
// refused: its device may be mounted there. Its snapshots are kept.
func (d *Driver) Remove(ctx context.Context, name string) error {
	err := d.with(name, func(v *volume) error {
		switch v.holder {
		case "":
			delete(d.s.volumes, name)
			return nil
		case d.instance:
			return fmt.Errorf("still attached to this host as %s", d.device(name))
		}
		return &drivers.HeldError{Volume: name, Holder: "instance " + v.holder}
	})
	if err != nil {
		return fmt.Errorf("remove volume %s: %w", name, err)
	}
	return nil
}

// Attach implements drivers.Driver. With force it takes the volume from
// the instance that holds it, whose Watch then reports it lost.
func (d *Driver) Attach(ctx context.Context, name string, force bool) (string, error) {
	err := d.with(name, func(v *volume) error {
		if v.holder != "" && v.holder != d.instance {
			if !force {
				return &drivers.HeldError{Volume: name, Holder: "instance " + v.holder}
			}
			if from, ok := d.s.instances[v.holder]; ok {
				from.tell(lostVolume{name, fmt.Errorf("instance %s took it", d.instance)})
			}
		}
		v.holder = d.instance
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("attach volume %s: %w", name, err)
	}
	return d.device(name), nil
}

// Detach implements drivers.Driver. A volume another instance holds is
// not this one's to release: nothing to do.
func (d *Driver) Detach(ctx context.Context, name string) error {
	err := d.with(name, func(v *volume) error {
		if v.holder == d.instance {
			v.holder = ""
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("detach volume %s: %w", name, err)
	}
	return nil
}

// tell queues a lost volume for Watch; the caller holds the store's lock.
func (d *Driver) tell(l lostVolume) {
	d.lost = append(d.lost, l)
	select {
	case d.wake <- struct{}{}:
	default: // Watch has been woken already
	}
}

// Watch implements drivers.Watcher: it reports the volumes another
// instance took from this one, also those taken before it started.
func (d *Driver) Watch(ctx context.Context, lost func(name string, why error)) {
	for {
		d.s.mu.Lock()
		pending := d.lost
		d.lost = nil
		d.s.mu.Unlock()
		// Outside the lock: lost may call back into the driver.
		for _, l := range pending {
			lost(l.name, l.why)
		}
		select {
		case <-ctx.Done():
			return
		case <-d.wake:
		}
	}
}

// Expand implements drivers.Expander.
func (d *Driver) Expand(ctx context.Context, name string, size int64) (drivers.Volume, error) {
	var out drivers.Volume
	err := d.with(name, func(v *volume) error {
		if size < v.Size {
			return drivers.Invalid("size %d bytes is smaller than its %d: a volume never shrinks", size, v.Size)
		}
		v.Size = size
		out = d.view(v)
		return nil
	})
	if err != nil {
		return drivers.Volume{}, fmt.Errorf("expand volume %s: %w", name, err)
	}
	return out, nil
}

// Blank implements drivers.BlankChecker: nothing was written to the
// volume (Store.Write), nor to what it was copied from.
func (d *Driver) Blank(ctx context.Context, name string) (bool, error) {
	var blank bool
	err := d.with(name, func(v *volume) error {
		blank = !v.written
		return nil
	})
	return blank, err
}

// RecordFormat implements drivers.FormatRecorder.
func (d *Driver) RecordFormat(ctx context.Context, name string, at time.Time) error {
	return d.with(name, func(v *volume) error {
		v.Meta = v.Meta.FormatRecord(at)
		return nil
	})
}

// CreateSnapshot implements drivers.Snapshotter.
func (d *Driver) CreateSnapshot(ctx context.Context, vol, name string) (drivers.Snapshot, error) {
	if err := drivers.ValidateSnapshotName(name); err != nil {
		return drivers.Snapshot{}, err
	}
	var s snapshot
	err := d.with(vol, func(v *volume) error {
		if _, ok := d.s.snapshots[name]; ok {
			return drivers.ErrSnapshotExists
		}
		s = snapshot{drivers.Snapshot{
			Name: name, VolumeName: vol, Size: v.Size, FSType: v.FSType,
			CreatedAt: time.Now().UTC().Truncate(time.Second),
		}, v.written}
		d.s.snapshots[name] = s
		return nil
	})
	if err != nil {
		return drivers.Snapshot{}, fmt.Errorf("create snapshot %s of volume %s: %w", name, vol, err)
	}
	return s.Snapshot, nil
}

// Snapshots implements drivers.Snapshotter.
func (d *Driver) Snapshots(ctx context.Context) ([]drivers.Snapshot, error) {
	d.s.mu.Lock()
	defer d.s.mu.Unlock()
	snaps := make([]drivers.Snapshot, 0, len(d.s.snapshots))
	for _, s := range d.s.snapshots {
		snaps = append(snaps, s.Snapshot)
	}
	slices.SortFunc(snaps, func(a, b drivers.Snapshot) int { return strings.Compare(a.Name, b.Name) })
	return snaps, nil
}

// InspectSnapshot implements drivers.Snapshotter.
func (d *Driver) InspectSnapshot(ctx context.Context, name string) (drivers.Snapshot, error) {
	if err := drivers.ValidateSnapshotName(name); err != nil {
		return drivers.Snapshot{}, err
	}
	d.s.mu.Lock()
	defer d.s.mu.Unlock()
	s, ok := d.s.snapshots[name]
	if !ok {
		return drivers.Snapshot{}, fmt.Errorf("snapshot %s: %w", name, drivers.ErrSnapshotNotFound)
	}
	return s.Snapshot, nil
}

// RemoveSnapshot implements drivers.Snapshotter.
func (d *Driver) RemoveSnapshot(ctx context.Context, name string) error {
	if err := drivers.ValidateSnapshotName(name); err != nil {
		return err
	}
	d.s.mu.Lock()
	defer d.s.mu.Unlock()
	if _, ok := d.s.snapshots[name]; !ok {
		return fmt.Errorf("remove snapshot %s: %w", name, drivers.ErrSnapshotNotFound)
	}
	delete(d.s.snapshots, name)
	return nil
}

// Capacity implements drivers.Capacitor: the store's capacity less what
// its volumes and snapshots take.
func (d *Driver) Capacity(ctx context.Context) (int64, error) {
	d.s.mu.Lock()
	defer d.s.mu.Unlock()
	left := d.s.capacity
	for _, v := range d.s.volumes {
		left -= v.Size
	}
	for _, s := range d.s.snapshots {
		left -= s.Size
	}
	return max(left, 0), nil
}
