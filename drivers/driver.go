// Package drivers holds the contract between the engine and a storage
// platform: a small core every driver implements, the optional
// capabilities declared beside it (capabilities.go), the typed errors both
// sides test (errors.go), and the registry that maps a driver name to its
// constructor.
//
// Drivers know nothing about Docker or CSI: they create, list and remove
// volumes and attach them to this host as block devices.
package drivers

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/sirupsen/logrus"
)

// Volume is what a driver knows about one volume.
type Volume struct {
	Name string `json:"name"`
	Size int64  `json:"size"` // bytes
	Meta
	// Snapshots are the snapshots taken of this volume that still exist.
	Snapshots []string          `json:"snapshots,omitempty"`
	Fields    map[string]string `json:"fields,omitempty"`
	// Service is the storage service that holds the volume. The plugin
	// sets it; a driver serves one service and leaves it empty.
	Service string `json:"service,omitempty"`

	// Device is the local block device while the volume is attached to this
	// host, empty otherwise. It is never persisted by the plugin.
	Device string `json:"-"`
}

// CreateOptions are the platform-neutral properties of a new volume.
type CreateOptions struct {
	Size             int64 // bytes; for a copy, 0 keeps the source's size
	FSType           string
	Type             string
	IOPS             int64
	AvailabilityZone string
	// FromVolume makes the new volume a copy of that volume's blocks. The
	// caller keeps the source still (frozen or unmounted) for the copy.
	FromVolume string
	// FromSnapshot makes the new volume a copy of that snapshot.
	FromSnapshot string
	// Pool is where a driver with several pools (rbd) puts the volume; ""
	// is its default. Drivers without pools refuse any other value.
	Pool string
	// Cluster makes the volume a Swarm cluster volume (created through
	// CSI), recorded in its Meta.
	Cluster bool
	// Encrypted makes the volume's blocks LUKS2, opened with dm-crypt on
	// the host that mounts it; recorded in its Meta.
	Encrypted bool
	Shape
}

// Shape is how a volume's filesystem is made and mounted, and who owns
// its data folder: recorded with the volume, so that every host that
// mounts it applies the same.
type Shape struct {
	// UID and GID own the data folder that the first mount makes.
	UID int `json:"uid,omitempty"`
	GID int `json:"gid,omitempty"`
	// Mode is the data folder's mode in octal (0750); "" is the
	// LINUX_VOLUME_FILEMODE of the host that first mounts it.
	Mode string `json:"mode,omitempty"`
	// MkfsOpts are the options of the filesystem's mkfs, each argument
	// apart; MountOpts its mount options.
	MkfsOpts  []string `json:"mkfsOpts,omitempty"`
	MountOpts []string `json:"mountOpts,omitempty"`
}

// Meta is how a volume was made. A driver whose platform keeps only the
// blocks (an RBD image, a VirtualBox medium) stores it beside them as JSON.
type Meta struct {
	FSType           string    `json:"fsType,omitempty"`
	Type             string    `json:"type,omitempty"`
	IOPS             int64     `json:"iops,omitempty"`
	AvailabilityZone string    `json:"availabilityZone,omitempty"`
	CreatedAt        time.Time `json:"createdAt"`
	// Origin is the volume this one was created as a copy of, if any.
	Origin string `json:"origin,omitempty"`
	// Snapshot is the snapshot this volume was created from, if any.
	Snapshot string `json:"snapshot,omitempty"`
	// Formatted is when a mount first found or made a filesystem on the
	// volume; zero until then. A volume formatted once is never formatted
	// again unless asked (overwritefs): a filesystem that can no longer be
	// recognised is damaged, and its data may be recoverable.
	Formatted time.Time `json:"formatted,omitzero"`
	// Unformatted marks a volume created empty, before any mount: its
	// first mount makes its filesystem. A volume made before the format
	// record existed has neither field.
	Unformatted bool `json:"unformatted,omitempty"`
	// Cluster marks a Swarm cluster volume: Docker's volume API leaves it
	// to the swarm, which names it, so that one name never stands for a
	// classic and a cluster volume at once.
	Cluster bool `json:"cluster,omitempty"`
	// Encrypted tells that the volume's blocks are LUKS2: every host opens
	// them with the volume's key before it formats or mounts anything.
	Encrypted bool `json:"encrypted,omitempty"`
	Shape
}

// NewMeta is the Meta of a volume created now with opts.
func NewMeta(opts CreateOptions) Meta {
	return Meta{
		FSType: opts.FSType, Type: opts.Type, IOPS: opts.IOPS, AvailabilityZone: opts.AvailabilityZone,
		CreatedAt: time.Now().UTC().Truncate(time.Second),
		Origin:    opts.FromVolume, Snapshot: opts.FromSnapshot,
		// A copy carries its source's blocks, filesystem included.
		Unformatted: opts.FromVolume == "" && opts.FromSnapshot == "",
		Cluster:     opts.Cluster,
		Encrypted:   opts.Encrypted,
		Shape:       opts.Shape,
	}
}

// FormatRecord is m with a filesystem recorded as made at; it is no longer
// Unformatted.
func (m Meta) FormatRecord(at time.Time) Meta {
	m.Formatted = at.UTC().Truncate(time.Second)
	m.Unformatted = false
	return m
}

// Snapshot is a point-in-time copy of a volume. It is independent of the
// volume: removing the volume keeps its snapshots.
type Snapshot struct {
	Name       string    `json:"name"`
	VolumeName string    `json:"volumeName"`
	Size       int64     `json:"size"` // bytes
	FSType     string    `json:"fsType,omitempty"`
	CreatedAt  time.Time `json:"createdAt"`
	// Encrypted tells that the snapshot copies an encrypted volume's
	// blocks, for a driver that records it.
	Encrypted bool `json:"encrypted,omitempty"`
}

// Driver is the core of a storage platform: what every driver does.
// Anything more is a capability (capabilities.go).
type Driver interface {
	// Name is the registry name of the driver.
	Name() string

	List(ctx context.Context) ([]Volume, error)
	Inspect(ctx context.Context, name string) (Volume, error)
	Create(ctx context.Context, name string, opts CreateOptions) (Volume, error)
	Remove(ctx context.Context, name string) error

	// Attach makes the volume available on this host and returns its device
	// path. Attaching an attached volume returns the same device. A volume
	// another host holds is refused with a *HeldError, unless force takes
	// it from that host.
	Attach(ctx context.Context, name string, force bool) (string, error)
	// Detach releases the device. Detaching a detached volume is not an error.
	Detach(ctx context.Context, name string) error
}

// Settings are what every driver of an endpoint shares, handed to its
// constructor so that no driver reads them itself.
type Settings struct {
	// Service names the driver's service, and prefixes the variables of
	// its own settings: the service "loopback" reads LOOPBACK_VOLUMEPATH,
	// a service "fast" FAST_VOLUMEPATH.
	Service string
	// InstanceID names this host to the platform (leases, lock owners):
	// REXRAY_INSTANCEID, else the host name.
	InstanceID string
	// Log is the driver's logger. Within a call, LogFrom(ctx, Log) carries
	// the call's fields.
	Log logrus.FieldLogger
}

// Constructor builds the driver of one service from the shared settings
// and its own, read from the environment under the service's prefix.
type Constructor func(ctx context.Context, s Settings) (Driver, error)

// Registry maps driver names to constructors. It is built by main, so every
// build includes every driver and REXRAY_DRIVER picks one.
type Registry map[string]Constructor

// New builds the named driver for a service.
func (r Registry) New(ctx context.Context, name string, s Settings) (Driver, error) {
	c, ok := r[name]
	if !ok {
		return nil, fmt.Errorf("unknown driver %q: available drivers are %s: %w", name, strings.Join(r.Names(), ", "), ErrInvalid)
	}
	if s.Log == nil {
		s.Log = logrus.StandardLogger()
	}
	s.Log = s.Log.WithField("service", s.Service)
	return c(ctx, s)
}

// Names lists the registered drivers in order.
func (r Registry) Names() []string {
	names := make([]string, 0, len(r))
	for n := range r {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
