// Package drivers holds the contract between the plugin and a storage
// platform, and the registry that maps a driver name to its constructor.
//
// Drivers know nothing about Docker: they create, list and remove volumes and
// attach them to this host as block devices.
package drivers

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"
)

var (
	// ErrNotFound is returned (wrapped) when a volume does not exist.
	ErrNotFound = errors.New("volume not found")
	// ErrExists is returned (wrapped) when creating a volume whose name is taken.
	ErrExists = errors.New("volume already exists")
)

// Volume is what a driver knows about one volume.
type Volume struct {
	Name             string    `json:"name"`
	Size             int64     `json:"size"` // bytes
	FSType           string    `json:"fsType,omitempty"`
	Type             string    `json:"type,omitempty"`
	IOPS             int64     `json:"iops,omitempty"`
	AvailabilityZone string    `json:"availabilityZone,omitempty"`
	CreatedAt        time.Time `json:"createdAt"`
	// Origin is the volume this one was created as a copy of, if any.
	Origin string            `json:"origin,omitempty"`
	Fields map[string]string `json:"fields,omitempty"`

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
}

// Driver is a storage platform.
type Driver interface {
	// Name is the registry name of the driver, reported as the "service".
	Name() string
	// InstanceID identifies this host to the platform.
	InstanceID(ctx context.Context) (string, error)

	List(ctx context.Context) ([]Volume, error)
	Inspect(ctx context.Context, name string) (Volume, error)
	Create(ctx context.Context, name string, opts CreateOptions) (Volume, error)
	Remove(ctx context.Context, name string) error

	// Attach makes the volume available on this host and returns its device
	// path. Attaching an attached volume returns the same device. force takes
	// the volume from another host that holds it.
	Attach(ctx context.Context, name string, force bool) (string, error)
	// Detach releases the device. Detaching a detached volume is not an error.
	Detach(ctx context.Context, name string) error
}

// Constructor builds a driver from its own configuration (environment).
type Constructor func(ctx context.Context) (Driver, error)

// Registry maps driver names to constructors. It is built by main, so every
// build includes every driver and REXRAY_DRIVER picks one.
type Registry map[string]Constructor

// New builds the named driver.
func (r Registry) New(ctx context.Context, name string) (Driver, error) {
	c, ok := r[name]
	if !ok {
		return nil, fmt.Errorf("unknown driver %q: available drivers are %s", name, strings.Join(r.Names(), ", "))
	}
	return c(ctx)
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
