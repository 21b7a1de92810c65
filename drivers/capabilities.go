package drivers

import (
	"context"
	"time"

	"github.com/rexray/rexray/config"
)

// The capabilities a driver may have beyond the core. The engine finds
// each by type assertion (As), and refuses what a driver lacks with an
// *UnsupportedError naming the capability.

// Snapshotter takes, lists and removes point-in-time copies of volumes.
type Snapshotter interface {
	// CreateSnapshot copies a volume's blocks into a new snapshot. The
	// caller keeps the volume still (frozen or unmounted) for the copy.
	CreateSnapshot(ctx context.Context, volume, name string) (Snapshot, error)
	Snapshots(ctx context.Context) ([]Snapshot, error)
	InspectSnapshot(ctx context.Context, name string) (Snapshot, error)
	RemoveSnapshot(ctx context.Context, name string) error
}

// Expander grows a volume to size bytes. It never shrinks one: a smaller
// size is refused with ErrInvalid, the same size changes nothing.
type Expander interface {
	Expand(ctx context.Context, name string, size int64) (Volume, error)
}

// OfflineExpander is an Expander that grows only a volume no host has
// attached: it refuses one in use.
type OfflineExpander interface {
	Expander
	ExpandsOffline()
}

// GrowthWatcher tells, through grown, of each volume this host holds
// that another host grew on the platform, once this host's device of it
// has taken the new size, so that the filesystem on it can follow.
// WatchGrowth returns when ctx ends.
type GrowthWatcher interface {
	WatchGrowth(ctx context.Context, grown func(name string))
}

// Capacitor tells how many bytes of new volumes its platform can still
// hold: a volume asked for more may fail to be created, or to be written.
type Capacitor interface {
	Capacity(ctx context.Context) (int64, error)
}

// Watcher keeps this host's hold on the volumes it attached (a lease in a
// shared store, a lock on the platform) and reports through lost a volume
// this host must give up: another host preempted it or its hold lapsed.
// Watch returns when ctx ends.
type Watcher interface {
	Watch(ctx context.Context, lost func(name string, why error))
}

// Fencer cuts this host's device of a volume it lost off the platform at
// once, before the filesystem on it is shut down: I/O still pending fails
// instead of reaching the volume or waiting on a platform that refuses
// this host. Fence runs without the volume's lock, so it must be safe
// beside any other call on the volume. The order of the whole fence is
// written in docs/leases.md.
type Fencer interface {
	Fence(ctx context.Context, name string) error
}

// BlankChecker tells that a volume was never written to: such a device
// reads as zeros, needs no probing before mkfs, and mkfs need not zero it.
type BlankChecker interface {
	Blank(ctx context.Context, name string) (bool, error)
}

// FormatRecorder keeps, in the volume's Meta as its platform stores it,
// that a filesystem was found or made on the volume (Meta.Formatted), so
// that every host sharing the platform knows it.
type FormatRecorder interface {
	RecordFormat(ctx context.Context, name string, at time.Time) error
}

// NameLister lists the volumes' names more cheaply than List, which reads
// every volume's record.
type NameLister interface {
	Names(ctx context.Context) ([]string, error)
}

// Identifier is a driver whose platform names this host itself (a
// VirtualBox machine's UUID), instead of Settings.InstanceID.
type Identifier interface {
	InstanceID(ctx context.Context) (string, error)
}

// Orphan is a device a driver bound on this host to a volume that was
// since deleted from the platform behind the driver's back.
type Orphan struct {
	Volume string
	Device string
	// Mounted tells that a filesystem on the device was still mounted
	// somewhere, so the device was left bound.
	Mounted bool
}

// OrphanDetacher finds such devices (nothing else leads to them) and
// detaches those that nothing mounts.
type OrphanDetacher interface {
	DetachOrphans(ctx context.Context) ([]Orphan, error)
}

// Configured tells a driver's effective settings, for `rexray env`.
type Configured interface {
	Settings() []config.Setting
}

// The names of the capabilities, as errors and messages give them.
const (
	CapSnapshots    = "snapshots"
	CapExpand       = "expand"
	CapBlankCheck   = "blank checks"
	CapFormatRecord = "format records"
	CapNames        = "name listing"
	CapCapacity     = "capacity"
)

// As finds capability T of d. A driver without it is refused with an
// *UnsupportedError naming capability.
func As[T any](d Driver, capability string) (T, error) {
	c, ok := d.(T)
	if !ok {
		return c, &UnsupportedError{Driver: d.Name(), Capability: capability}
	}
	return c, nil
}

// LeaseCounter tells how often the driver renewed this host's holds on
// its volumes (leases), and how often a renewal failed, since it started:
// for the metrics.
type LeaseCounter interface {
	LeaseCounts() LeaseCounts
}

// LeaseCounts are a LeaseCounter's counts.
type LeaseCounts struct {
	Renewals, Failures uint64
}
