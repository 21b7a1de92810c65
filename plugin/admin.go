package plugin

import (
	"context"
	"encoding/json"
	"net/http"

	"github.com/rexray/rexray/api"
	"github.com/rexray/rexray/engine"
)

// Admin is the operator's calls (package api) on an engine: what the
// plugin serves under api.Prefix, and what the CLI runs in its own
// process when no plugin is running.
type Admin struct{ eng *engine.Engine }

// NewAdmin is the operator's calls on eng.
func NewAdmin(eng *engine.Engine) Admin { return Admin{eng} }

// Volumes lists every service's volumes, fresh from the stores.
func (a Admin) Volumes(ctx context.Context) ([]api.VolumeInfo, error) {
	vols, err := a.eng.Volumes(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]api.VolumeInfo, len(vols))
	for i, v := range vols {
		out[i] = volumeInfo(v)
	}
	return out, nil
}

// Volume inspects one volume, fresh from its store.
func (a Admin) Volume(ctx context.Context, name string) (api.VolumeInfo, error) {
	return info(a.eng.Volume(ctx, name))
}

// ResizeVolume grows a volume while it may be in use.
func (a Admin) ResizeVolume(ctx context.Context, name, size string) (api.VolumeInfo, error) {
	return info(a.eng.ResizeVolume(ctx, name, size))
}

// CreateVolume creates a volume with Docker's create options.
func (a Admin) CreateVolume(ctx context.Context, name string, opts map[string]string) (api.VolumeInfo, error) {
	return info(a.eng.CreateVolume(ctx, name, opts))
}

// RemoveVolume removes a volume.
func (a Admin) RemoveVolume(ctx context.Context, name string) error { return a.eng.Remove(ctx, name) }

// Attach attaches a volume to this host, and holds it until Detach.
func (a Admin) Attach(ctx context.Context, name string) (api.VolumeInfo, error) {
	return info(a.eng.Attach(ctx, name))
}

// Detach releases what Attach holds.
func (a Admin) Detach(ctx context.Context, name string) error { return a.eng.Detach(ctx, name) }

// MountVolume mounts a volume on this host for the operator.
func (a Admin) MountVolume(ctx context.Context, name string) (api.VolumeInfo, error) {
	return info(a.eng.MountVolume(ctx, name))
}

// UnmountVolume releases what MountVolume holds.
func (a Admin) UnmountVolume(ctx context.Context, name string) error {
	return a.eng.UnmountVolume(ctx, name)
}

// Snapshots lists every service's snapshots.
func (a Admin) Snapshots(ctx context.Context) ([]api.Snapshot, error) {
	snaps, err := a.eng.Snapshots(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]api.Snapshot, len(snaps))
	for i, s := range snaps {
		out[i] = api.Snapshot(s)
	}
	return out, nil
}

// CreateSnapshot takes a snapshot of a volume.
func (a Admin) CreateSnapshot(ctx context.Context, volume, name string) (api.Snapshot, error) {
	s, err := a.eng.CreateSnapshot(ctx, volume, name)
	return api.Snapshot(s), err
}

// RemoveSnapshot removes a snapshot.
func (a Admin) RemoveSnapshot(ctx context.Context, name string) error {
	return a.eng.RemoveSnapshot(ctx, name)
}

// adminHandlers serves the operator's calls.
func (p *Plugin) adminHandlers(mux *http.ServeMux) {
	type req = api.Request
	none := struct{}{}
	a := p.Admin
	calls := map[string]func(context.Context, *req) (any, error){
		api.VolumeList:     func(ctx context.Context, _ *req) (any, error) { return a.Volumes(ctx) },
		api.VolumeInspect:  func(ctx context.Context, r *req) (any, error) { return a.Volume(ctx, r.Name) },
		api.VolumeCreate:   func(ctx context.Context, r *req) (any, error) { return a.CreateVolume(ctx, r.Name, r.Opts) },
		api.VolumeRemove:   func(ctx context.Context, r *req) (any, error) { return none, a.RemoveVolume(ctx, r.Name) },
		api.VolumeAttach:   func(ctx context.Context, r *req) (any, error) { return a.Attach(ctx, r.Name) },
		api.VolumeDetach:   func(ctx context.Context, r *req) (any, error) { return none, a.Detach(ctx, r.Name) },
		api.VolumeMount:    func(ctx context.Context, r *req) (any, error) { return a.MountVolume(ctx, r.Name) },
		api.VolumeUnmount:  func(ctx context.Context, r *req) (any, error) { return none, a.UnmountVolume(ctx, r.Name) },
		api.VolumeResize:   func(ctx context.Context, r *req) (any, error) { return a.ResizeVolume(ctx, r.Name, r.Size) },
		api.SnapshotList:   func(ctx context.Context, _ *req) (any, error) { return a.Snapshots(ctx) },
		api.SnapshotCreate: func(ctx context.Context, r *req) (any, error) { return a.CreateSnapshot(ctx, r.Volume, r.Name) },
		api.SnapshotRemove: func(ctx context.Context, r *req) (any, error) { return none, a.RemoveSnapshot(ctx, r.Name) },
	}
	for name, fn := range calls {
		handle(p, mux, "admin", api.Prefix+name, fn)
	}
	mux.HandleFunc(api.Prefix+api.Events, p.followEvents)
}

// followEvents streams the engine's events, one JSON object a line, until
// the caller goes away or the plugin stops.
func (p *Plugin) followEvents(w http.ResponseWriter, r *http.Request) {
	flusher, _ := w.(http.Flusher)
	ch := p.bus.Follow(r.Context())
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	if flusher != nil {
		flusher.Flush()
	}
	enc := json.NewEncoder(w)
	for ev := range ch {
		if err := enc.Encode(ev); err != nil {
			return
		}
		if flusher != nil {
			flusher.Flush()
		}
	}
}

func info(v engine.VolumeInfo, err error) (api.VolumeInfo, error) {
	if err != nil {
		return api.VolumeInfo{}, err
	}
	return volumeInfo(v), nil
}

func volumeInfo(v engine.VolumeInfo) api.VolumeInfo {
	out := api.VolumeInfo{Volume: v.Volume, Device: v.Device, Mountpoint: v.Mountpoint}
	for _, h := range v.Holds {
		out.MountIDs = append(out.MountIDs, h.Key())
	}
	return out
}
