// Package plugin is Docker's front door: it answers Docker's volume plugin
// API (go-plugins-helpers' volume.Driver) and the operator CLI's calls
// (package api) over HTTP, and hands every call to the engine.
package plugin

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/docker/go-plugins-helpers/volume"
	"github.com/docker/go-units"
	"github.com/sirupsen/logrus"

	"github.com/rexray/rexray/drivers"
	"github.com/rexray/rexray/engine"
	"github.com/rexray/rexray/engine/events"
	"github.com/rexray/rexray/engine/ledger"
)

// Plugin implements volume.Driver over an engine, and the operator's
// calls (Admin) beside it.
type Plugin struct {
	Admin
	eng *engine.Engine
	// createImplicit is whether a Mount of a missing volume creates it.
	createImplicit bool
	// readBound bounds the reading of one request (requestRead).
	readBound time.Duration
	// grpc, if set, answers the endpoint's gRPC requests (ServeGRPC).
	grpc http.Handler
	// rec, if set, counts the calls (Record).
	rec Recorder
	// log, if set, logs the calls that fail (LogTo).
	log logrus.FieldLogger
	// bus hands the engine's events to the operator's followers.
	bus *events.Bus
}

// LogTo has every failed call logged on log, under its request ID: its
// caller (dockerd) keeps the error in its own log only. Call it before
// Serve.
func (p *Plugin) LogTo(log logrus.FieldLogger) { p.log = log }

// Recorder counts a front door's calls (package metrics): door is docker
// for Docker's volume API, admin for the operator's calls.
type Recorder interface {
	Request(door, op string, err error, took time.Duration)
}

// Record has r count every call from now on. Call it before Serve.
func (p *Plugin) Record(r Recorder) { p.rec = r }

// New is the Docker front door of eng. implicit makes a Mount of a
// missing volume create it (CREATE_IMPLICIT).
func New(eng *engine.Engine, implicit bool) *Plugin {
	bus := events.NewBus()
	eng.Observe(bus)
	return &Plugin{Admin: NewAdmin(eng), eng: eng, createImplicit: implicit, readBound: requestRead, bus: bus}
}

var _ volume.Driver = (*Plugin)(nil)

// Capabilities implements volume.Driver: a volume is reachable from every
// host that shares the store.
func (p *Plugin) Capabilities() *volume.CapabilitiesResponse {
	return &volume.CapabilitiesResponse{Capabilities: volume.Capability{Scope: "global"}}
}

// Create implements volume.Driver.
func (p *Plugin) Create(r *volume.CreateRequest) error { return p.create(context.Background(), r) }

func (p *Plugin) create(ctx context.Context, r *volume.CreateRequest) error {
	return p.eng.Create(ctx, r.Name, r.Options)
}

// Remove implements volume.Driver.
func (p *Plugin) Remove(r *volume.RemoveRequest) error { return p.remove(context.Background(), r) }

func (p *Plugin) remove(ctx context.Context, r *volume.RemoveRequest) error {
	return p.eng.Remove(ctx, r.Name)
}

// hold is the ledger's hold for the mount ID a client sent: dockerd's are
// 64 hex digits. Clients from before Docker 1.12 (Docker 1.11's protocol,
// the original dvdcli) send none: they counted their own mounts, so they
// share one hold, which every Mount with no ID takes and the first Unmount
// with no ID releases.
func hold(id string) (ledger.Hold, error) {
	if id == "" {
		return ledger.Hold{Kind: ledger.Legacy}, nil
	}
	return ledger.DockerHold(id), ledger.ValidDockerID(id)
}

// Mount implements volume.Driver.
func (p *Plugin) Mount(r *volume.MountRequest) (*volume.MountResponse, error) {
	return p.mount(context.Background(), r)
}

func (p *Plugin) mount(ctx context.Context, r *volume.MountRequest) (*volume.MountResponse, error) {
	h, err := hold(r.ID)
	if err != nil {
		return nil, fmt.Errorf("mount volume %s: %w", r.Name, err)
	}
	path, err := p.eng.Mount(ctx, r.Name, h, p.createImplicit)
	if err != nil {
		return nil, err
	}
	return &volume.MountResponse{Mountpoint: path}, nil
}

// Unmount implements volume.Driver. An unknown ID is not an error.
func (p *Plugin) Unmount(r *volume.UnmountRequest) error { return p.unmount(context.Background(), r) }

func (p *Plugin) unmount(ctx context.Context, r *volume.UnmountRequest) error {
	h, err := hold(r.ID)
	if err != nil {
		return fmt.Errorf("unmount volume %s: %w", r.Name, err)
	}
	return p.eng.Unmount(ctx, r.Name, h)
}

// Path implements volume.Driver.
func (p *Plugin) Path(r *volume.PathRequest) (*volume.PathResponse, error) {
	return p.path(context.Background(), r)
}

func (p *Plugin) path(ctx context.Context, r *volume.PathRequest) (*volume.PathResponse, error) {
	v, err := p.get(ctx, &volume.GetRequest{Name: r.Name})
	if err != nil {
		return nil, err
	}
	return &volume.PathResponse{Mountpoint: v.Volume.Mountpoint}, nil
}

// Get implements volume.Driver, fresh from the volume's platform.
func (p *Plugin) Get(r *volume.GetRequest) (*volume.GetResponse, error) {
	return p.get(context.Background(), r)
}

func (p *Plugin) get(ctx context.Context, r *volume.GetRequest) (*volume.GetResponse, error) {
	st, err := p.eng.Get(ctx, r.Name)
	if err != nil {
		return nil, err
	}
	if st.Cluster {
		return nil, fmt.Errorf("get volume %s: %w: it is a Swarm cluster volume, which the swarm names (docker volume ls --cluster)", r.Name, drivers.ErrNotFound)
	}
	return &volume.GetResponse{Volume: p.dockerVolume(st)}, nil
}

// List implements volume.Driver. As the protocol defines it, List carries
// names and mount points: dockerd asks Get for the rest.
func (p *Plugin) List() (*volume.ListResponse, error) { return p.list(context.Background()) }

func (p *Plugin) list(ctx context.Context) (*volume.ListResponse, error) {
	names, err := p.eng.Names(ctx)
	if err != nil {
		return nil, err
	}
	resp := &volume.ListResponse{Volumes: make([]*volume.Volume, 0, len(names))}
	for _, st := range names {
		if !st.Cluster { // the swarm lists those
			resp.Volumes = append(resp.Volumes, &volume.Volume{Name: st.Name, Mountpoint: st.Mountpoint})
		}
	}
	return resp, nil
}

// dockerVolume is a volume as Docker shows it, with REX-Ray's Status fields.
func (p *Plugin) dockerVolume(st engine.Status) *volume.Volume {
	v := st.Volume
	fields := map[string]string{"fsType": v.FSType}
	if v.Origin != "" {
		fields["origin"] = v.Origin
	}
	if v.Snapshot != "" {
		fields["snapshot"] = v.Snapshot
	}
	if len(v.Snapshots) > 0 {
		fields["snapshots"] = strings.Join(v.Snapshots, ",")
	}
	for k, val := range v.Fields {
		fields[k] = val
	}
	return &volume.Volume{
		Name:       v.Name,
		CreatedAt:  v.CreatedAt.Format(time.RFC3339),
		Mountpoint: st.Mountpoint,
		Status: map[string]any{
			"name":             v.Name,
			"size":             float64(v.Size) / units.GiB, // GB, as REX-Ray
			"iops":             v.IOPS,
			"type":             v.Type,
			"availabilityZone": v.AvailabilityZone,
			"fields":           fields,
			"service":          v.Service,
			"server":           p.eng.Instance(),
		},
	}
}
