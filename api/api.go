// Package api holds the wire types of the operator's calls (`rexray
// volume ...`, dvdcli), which the plugin serves beside Docker's volume
// plugin API: a client imports this package, never the server's.
package api

import (
	"github.com/rexray/rexray/drivers"
	"github.com/rexray/rexray/engine/events"
)

// Prefix begins the paths of the operator's calls: POST Prefix+method.
const Prefix = "/Rexray."

// The operator's methods.
const (
	VolumeList     = "VolumeList"
	VolumeInspect  = "VolumeInspect"
	VolumeCreate   = "VolumeCreate"
	VolumeRemove   = "VolumeRemove"
	VolumeAttach   = "VolumeAttach"
	VolumeDetach   = "VolumeDetach"
	VolumeMount    = "VolumeMount"
	VolumeUnmount  = "VolumeUnmount"
	VolumeResize   = "VolumeResize"
	SnapshotList   = "SnapshotList"
	SnapshotCreate = "SnapshotCreate"
	SnapshotRemove = "SnapshotRemove"
	// Events streams what the plugin does, one JSON Event a line, until
	// the caller goes away.
	Events = "Events"
)

// Event is one thing the plugin did (rexray events).
type Event = events.Event

// Request is the body of every operator call; unused fields are left out.
type Request struct {
	Name   string            `json:",omitempty"`
	Volume string            `json:",omitempty"` // the volume of a new snapshot
	Opts   map[string]string `json:",omitempty"`
	Size   string            `json:",omitempty"` // a resize's, as the size option takes it
}

// VolumeInfo is a volume as the operator sees it: what the store holds and
// what this host does with it.
type VolumeInfo struct {
	drivers.Volume
	Device string `json:"device,omitempty"`
	// MountIDs are the holds on the volume here: Docker's mount IDs, and
	// rexray-cli-attach, rexray-cli-mount or rexray:legacy for the
	// operator's attach and mount and a client that sends no mount ID.
	MountIDs   []string `json:"mountIDs,omitempty"`
	Mountpoint string   `json:"mountpoint,omitempty"`
}

// Snapshot is a snapshot with the service that holds it.
type Snapshot struct {
	drivers.Snapshot
	Service string `json:"service"`
}
