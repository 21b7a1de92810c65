// Package plugin gives Docker's volume plugin API its semantics on top of a
// storage driver and the OS mount code: per-volume locks, a persisted ledger
// of mount IDs, a local catalogue for Get and List, and REX-Ray's settings.
package plugin

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/docker/go-plugins-helpers/volume"
	"github.com/docker/go-units"
	"github.com/sirupsen/logrus"

	"github.com/rexray/rexray/config"
	"github.com/rexray/rexray/drivers"
	"github.com/rexray/rexray/state"
)

// opTimeout bounds every call: `docker plugin enable` gives a call 30 s, and
// a slow step must fail with a clear error rather than hang.
const opTimeout = 25 * time.Second

// Mounter is the OS side the plugin needs.
type Mounter interface {
	Mount(ctx context.Context, device, name, fsType string, format bool) (string, error)
	Unmount(ctx context.Context, name string) error
	IsMounted(name string) (bool, error)
	Mounted() (map[string]string, error)
	Freeze(name string) (thaw func() error, err error)
	Path(name string) string
}

// Plugin implements volume.Driver.
type Plugin struct {
	cfg      config.Config
	drv      drivers.Driver
	mnt      Mounter
	st       *state.Store
	log      logrus.FieldLogger
	locks    *locks
	instance string
	ready    chan struct{} // closed once Restore has run
}

// New assembles a plugin. Nothing slow happens here: call Restore after the
// socket listens.
func New(cfg config.Config, drv drivers.Driver, mnt Mounter, st *state.Store, log logrus.FieldLogger) *Plugin {
	return &Plugin{
		cfg:   cfg,
		drv:   drv,
		mnt:   mnt,
		st:    st,
		log:   log,
		locks: newLocks(),
		ready: make(chan struct{}),
	}
}

var _ volume.Driver = (*Plugin)(nil)

// begin waits for start-up to finish and takes the volume's lock.
// The returned done releases the lock and logs the call at debug level.
func (p *Plugin) begin(op, name string) (context.Context, func(), error) {
	if err := drivers.ValidateName(name); err != nil {
		return nil, nil, err
	}
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	if err := p.waitReady(ctx); err != nil {
		cancel()
		return nil, nil, err
	}
	unlock, err := p.locks.lock(ctx, name)
	if err != nil {
		cancel()
		return nil, nil, err
	}
	return ctx, func() {
		unlock()
		cancel()
		p.log.WithField("volume", name).Debugf("%s took %s", op, time.Since(start))
	}, nil
}

func (p *Plugin) waitReady(ctx context.Context) error {
	select {
	case <-p.ready:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("rexray is still starting up (reconciling its state): %w", ctx.Err())
	}
}

// Capabilities implements volume.Driver: a volume is reachable from every
// host that shares the store.
func (p *Plugin) Capabilities() *volume.CapabilitiesResponse {
	return &volume.CapabilitiesResponse{Capabilities: volume.Capability{Scope: "global"}}
}

// lookup finds a volume in the catalogue, then asks the driver, so a volume
// another host created is found too.
func (p *Plugin) lookup(ctx context.Context, name string) (drivers.Volume, error) {
	v, ok, err := p.st.Volume(name)
	if err != nil || ok {
		return v, err
	}
	v, err = p.drv.Inspect(ctx, name)
	if err != nil {
		return v, err
	}
	return v, p.st.PutVolume(v)
}

// Create implements volume.Driver. Docker re-sends Create for volumes it
// knows: the same or no options succeed and change nothing.
func (p *Plugin) Create(r *volume.CreateRequest) error {
	req, err := parseCreate(r.Options, p.defaults())
	if err != nil {
		return fmt.Errorf("create volume %s: %w", r.Name, err)
	}
	ctx, done, err := p.begin("create", r.Name)
	if err != nil {
		return fmt.Errorf("create volume %s: %w", r.Name, err)
	}
	defer done()
	return p.create(ctx, r.Name, req)
}

func (p *Plugin) create(ctx context.Context, name string, req createRequest) error {
	v, err := p.lookup(ctx, name)
	switch {
	case err == nil:
		if diffs := req.conflicts(v); len(diffs) > 0 {
			return fmt.Errorf("create volume %s: it exists and differs: %v; remove it first or pick another name", name, diffs)
		}
		return nil
	case !errors.Is(err, drivers.ErrNotFound):
		return fmt.Errorf("create volume %s: %w", name, err)
	case p.cfg.Ops.CreateDisable:
		return fmt.Errorf("create volume %s: creating volumes is disabled (%s_CREATE_DISABLE)", name, config.OpsPrefix)
	}
	if req.opts.FromVolume != "" {
		v, err = p.createCopy(ctx, name, req)
	} else {
		v, err = p.drv.Create(ctx, name, req.opts)
	}
	if err != nil {
		return err
	}
	if err := p.st.PutVolume(v); err != nil {
		p.drv.Remove(ctx, name)
		return fmt.Errorf("create volume %s: %w", name, err)
	}
	if req.overwrite {
		if err := p.st.SetOverwrite(name, true); err != nil {
			return fmt.Errorf("create volume %s: %w", name, err)
		}
	}
	p.log.WithField("volume", name).Infof("created (%s, %s)", units.BytesSize(float64(v.Size)), v.FSType)
	return nil
}

// createCopy makes a volume a copy of another. A source mounted on this host
// is frozen for the copy, so the copy is never torn.
func (p *Plugin) createCopy(ctx context.Context, name string, req createRequest) (drivers.Volume, error) {
	from := req.opts.FromVolume
	if from == name {
		// Its lock is held already: taking it again would wait out ctx.
		return drivers.Volume{}, fmt.Errorf("create volume %s: a volume cannot be a copy of itself", name)
	}
	unlock, err := p.locks.lock(ctx, from)
	if err != nil {
		return drivers.Volume{}, fmt.Errorf("create volume %s: %w", name, err)
	}
	defer unlock()
	src, err := p.lookup(ctx, from)
	if err != nil {
		return drivers.Volume{}, fmt.Errorf("create volume %s: source volume %s: %w", name, from, err)
	}
	switch {
	case !req.given[optNewFSType]:
		req.opts.FSType = src.FSType
	case req.opts.FSType != src.FSType && !req.overwrite:
		return drivers.Volume{}, fmt.Errorf("create volume %s: a copy of %s keeps its filesystem (%s); add overwritefs=true to format it as %s instead", name, from, src.FSType, req.opts.FSType)
	}
	thaw, err := p.mnt.Freeze(from)
	if err != nil {
		return drivers.Volume{}, fmt.Errorf("create volume %s: %w", name, err)
	}
	v, err := p.drv.Create(ctx, name, req.opts)
	if terr := thaw(); terr != nil {
		p.log.WithField("volume", from).Errorf("after copying it: %v", terr)
	}
	return v, err
}

func (p *Plugin) defaults() defaults {
	o := p.cfg.Ops
	return defaults{
		size:             o.CreateDefaultSize,
		fsType:           p.cfg.DefaultFSType(),
		volumeType:       o.CreateDefaultType,
		iops:             o.CreateDefaultIOPS,
		availabilityZone: o.CreateDefaultAvailZone,
	}
}

// Remove implements volume.Driver.
func (p *Plugin) Remove(r *volume.RemoveRequest) error {
	ctx, done, err := p.begin("remove", r.Name)
	if err != nil {
		return fmt.Errorf("remove volume %s: %w", r.Name, err)
	}
	defer done()

	if p.cfg.Ops.RemoveDisable {
		// As REX-Ray: Docker forgets the volume, the data stays.
		p.log.WithField("volume", r.Name).Warn("remove disabled: keeping the volume's data")
		return nil
	}
	ids, err := p.st.Mounts(r.Name)
	if err != nil {
		return fmt.Errorf("remove volume %s: %w", r.Name, err)
	}
	if len(ids) > 0 {
		if !p.cfg.Ops.RemoveForce {
			return fmt.Errorf("remove volume %s: in use by %d container mount(s)", r.Name, len(ids))
		}
		if err := p.release(ctx, r.Name); err != nil {
			return fmt.Errorf("remove volume %s: %w", r.Name, err)
		}
	}
	now := time.Now()
	retry, err := p.st.MarkRemoving(r.Name, now, now.Add(-removeMemory))
	if err != nil {
		return fmt.Errorf("remove volume %s: %w", r.Name, err)
	}
	if err := p.drv.Remove(ctx, r.Name); errors.Is(err, drivers.ErrNotFound) {
		if err := p.goneAlready(r.Name, retry, err); err != nil {
			return err
		}
	} else if err != nil {
		return err
	}
	if err := p.st.DeleteVolume(r.Name); err != nil {
		return fmt.Errorf("remove volume %s: %w", r.Name, err)
	}
	p.log.WithField("volume", r.Name).Info("removed")
	return nil
}

// validID refuses a mount ID the ledger cannot key: dockerd's are 64 hex
// digits.
func validID(id string) error {
	if id == "" || len(id) > 1024 {
		return fmt.Errorf("invalid mount ID: %d bytes long, 1 to 1024 are accepted", len(id))
	}
	return nil
}

// removeMemory is how long a Remove that died part way is remembered, so
// that dockerd's retry of it succeeds.
const removeMemory = 24 * time.Hour

// goneAlready decides a Remove of a volume the store does not have
// (notFound): it succeeds for a volume this host catalogued (another host
// removed it) or began removing before (this call is dockerd's retry).
func (p *Plugin) goneAlready(name string, retry bool, notFound error) error {
	_, known, err := p.st.Volume(name)
	if err != nil || known || retry {
		return err
	}
	// Never ours: leave no mark, so the next Remove says "not found" too.
	if err := p.st.ClearRemoving(name); err != nil {
		return err
	}
	return notFound
}

// Mount implements volume.Driver. The first mount ID attaches and mounts;
// later ones only count.
func (p *Plugin) Mount(r *volume.MountRequest) (*volume.MountResponse, error) {
	if err := validID(r.ID); err != nil {
		return nil, fmt.Errorf("mount volume %s: %w", r.Name, err)
	}
	ctx, done, err := p.begin("mount "+r.ID, r.Name)
	if err != nil {
		return nil, fmt.Errorf("mount volume %s: %w", r.Name, err)
	}
	defer done()

	v, err := p.lookup(ctx, r.Name)
	if errors.Is(err, drivers.ErrNotFound) && p.cfg.Ops.CreateImplicit {
		err = p.create(ctx, r.Name, createRequest{opts: p.implicitOptions()})
		if err == nil {
			v, err = p.lookup(ctx, r.Name)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("mount volume %s: %w", r.Name, err)
	}
	path, err := p.mount(ctx, v)
	if err != nil {
		return nil, err
	}
	if _, _, err := p.st.AddMount(r.Name, r.ID); err != nil {
		if ids, lerr := p.st.Mounts(r.Name); lerr == nil && len(ids) == 0 {
			p.releaseLogged(ctx, r.Name) // mounted for nobody
		}
		return nil, fmt.Errorf("mount volume %s: %w", r.Name, err)
	}
	return &volume.MountResponse{Mountpoint: path}, nil
}

func (p *Plugin) implicitOptions() drivers.CreateOptions {
	d := p.defaults()
	size, _ := parseSize(d.size) // checked at start-up
	return drivers.CreateOptions{Size: size, FSType: d.fsType, Type: d.volumeType, IOPS: d.iops, AvailabilityZone: d.availabilityZone}
}

// mount attaches and mounts v unless it is mounted already.
func (p *Plugin) mount(ctx context.Context, v drivers.Volume) (string, error) {
	mounted, err := p.mnt.IsMounted(v.Name)
	if err != nil {
		return "", fmt.Errorf("mount volume %s: %w", v.Name, err)
	}
	if mounted {
		return p.mnt.Path(v.Name), nil
	}
	dev, err := p.drv.Attach(ctx, v.Name, p.cfg.Preempting())
	if err != nil {
		return "", fmt.Errorf("mount volume %s: %w", v.Name, err)
	}
	path, err := p.mountDevice(ctx, v, dev)
	if err != nil {
		if derr := p.drv.Detach(ctx, v.Name); derr != nil {
			p.log.WithField("volume", v.Name).Errorf("after a failed mount: %v", derr)
		}
		return "", fmt.Errorf("mount volume %s: %w", v.Name, err)
	}
	return path, nil
}

// blankChecker is a driver that can tell a volume was never written to:
// such a device reads as zeros and needs no probing before mkfs.
type blankChecker interface {
	Blank(ctx context.Context, name string) (bool, error)
}

// mountDevice formats (when needed) and mounts an attached volume.
func (p *Plugin) mountDevice(ctx context.Context, v drivers.Volume, dev string) (string, error) {
	overwrite, err := p.st.Overwrite(v.Name)
	if err != nil {
		return "", err
	}
	format := overwrite
	if bc, ok := p.drv.(blankChecker); ok && !format {
		if format, err = bc.Blank(ctx, v.Name); err != nil {
			return "", err
		}
	}
	path, err := p.mnt.Mount(ctx, dev, v.Name, v.FSType, format)
	if err != nil || !overwrite {
		return path, err
	}
	// overwritefs applies to the first mount only: later mounts keep data.
	if err := p.st.SetOverwrite(v.Name, false); err != nil {
		p.mnt.Unmount(ctx, v.Name)
		return "", err
	}
	return path, nil
}

// Unmount implements volume.Driver. The last mount ID out unmounts and
// detaches. An unknown ID is not an error.
func (p *Plugin) Unmount(r *volume.UnmountRequest) error {
	ctx, done, err := p.begin("unmount "+r.ID, r.Name)
	if err != nil {
		return fmt.Errorf("unmount volume %s: %w", r.Name, err)
	}
	defer done()

	left, removed, err := p.st.RemoveMount(r.Name, r.ID)
	if err != nil {
		return fmt.Errorf("unmount volume %s: %w", r.Name, err)
	}
	if !removed {
		p.log.WithField("volume", r.Name).Warnf("unmount of unknown mount ID %s", r.ID)
	}
	if left > 0 && !p.cfg.Ops.UnmountIgnoreUsedCount {
		return nil
	}
	if err := p.release(ctx, r.Name); err != nil {
		return fmt.Errorf("unmount volume %s: %w", r.Name, err)
	}
	return nil
}

// release unmounts and detaches a volume and forgets its mount IDs.
func (p *Plugin) release(ctx context.Context, name string) error {
	if err := p.mnt.Unmount(ctx, name); err != nil {
		return err
	}
	if err := p.drv.Detach(ctx, name); err != nil && !errors.Is(err, drivers.ErrNotFound) {
		return err
	}
	return p.st.ClearMounts(name)
}

// Path implements volume.Driver.
func (p *Plugin) Path(r *volume.PathRequest) (*volume.PathResponse, error) {
	v, err := p.Get(&volume.GetRequest{Name: r.Name})
	if err != nil {
		return nil, err
	}
	return &volume.PathResponse{Mountpoint: v.Volume.Mountpoint}, nil
}

// Get implements volume.Driver from the catalogue: a backend hiccup must not
// make Get fail for a volume that exists, or dockerd forgets the volume.
func (p *Plugin) Get(r *volume.GetRequest) (*volume.GetResponse, error) {
	if err := drivers.ValidateName(r.Name); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	if err := p.waitReady(ctx); err != nil {
		return nil, err
	}
	v, err := p.lookup(ctx, r.Name)
	if err != nil {
		return nil, fmt.Errorf("get volume %s: %w", r.Name, err)
	}
	ids, err := p.st.Mounts(r.Name)
	if err != nil {
		return nil, fmt.Errorf("get volume %s: %w", r.Name, err)
	}
	return &volume.GetResponse{Volume: p.dockerVolume(v, len(ids) > 0)}, nil
}

// List implements volume.Driver from the catalogue. As the protocol
// defines it, List carries names and mount points: dockerd asks Get for
// the rest, so the records are not decoded here.
func (p *Plugin) List() (*volume.ListResponse, error) {
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	if err := p.waitReady(ctx); err != nil {
		return nil, err
	}
	names, err := p.st.VolumeNames()
	if err != nil {
		return nil, err
	}
	counts, err := p.st.MountedVolumes()
	if err != nil {
		return nil, err
	}
	resp := &volume.ListResponse{Volumes: make([]*volume.Volume, len(names))}
	for i, name := range names {
		resp.Volumes[i] = &volume.Volume{Name: name}
		if counts[name] > 0 {
			resp.Volumes[i].Mountpoint = p.mnt.Path(name)
		}
	}
	return resp, nil
}

// dockerVolume is v as Docker shows it, with REX-Ray's Status fields.
func (p *Plugin) dockerVolume(v drivers.Volume, mounted bool) *volume.Volume {
	fields := map[string]string{"fsType": v.FSType}
	if v.Origin != "" {
		fields["origin"] = v.Origin
	}
	for k, val := range v.Fields {
		fields[k] = val
	}
	dv := &volume.Volume{
		Name:      v.Name,
		CreatedAt: v.CreatedAt.Format(time.RFC3339),
		Status: map[string]any{
			"name":             v.Name,
			"size":             float64(v.Size) / units.GiB, // GB, as REX-Ray
			"iops":             v.IOPS,
			"type":             v.Type,
			"availabilityZone": v.AvailabilityZone,
			"fields":           fields,
			"service":          p.drv.Name(),
			"server":           p.instance,
		},
	}
	if mounted {
		dv.Mountpoint = p.mnt.Path(v.Name)
	}
	return dv
}
