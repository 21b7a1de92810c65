// Package plugin gives Docker's volume plugin API its semantics on top of a
// storage driver and the OS mount code: per-volume locks, a persisted ledger
// of mount IDs, a local catalogue that answers for a platform that does not,
// and REX-Ray's settings.
package plugin

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/docker/go-plugins-helpers/volume"
	"github.com/docker/go-units"
	"github.com/sirupsen/logrus"

	"github.com/rexray/rexray/config"
	"github.com/rexray/rexray/drivers"
	"github.com/rexray/rexray/mount"
	"github.com/rexray/rexray/state"
)

// opTimeout bounds every call: `docker plugin enable` gives a call 30 s, and
// a slow step must fail with a clear error rather than hang.
const opTimeout = 25 * time.Second

// Mounter is the OS side the plugin needs.
type Mounter interface {
	Mount(ctx context.Context, device, name, fsType string, content mount.Content) (string, error)
	Unmount(ctx context.Context, name string) error
	IsMounted(name string) (bool, error)
	Mounted() (map[string]string, error)
	Freeze(name string) (thaw func() error, err error)
	Fence(ctx context.Context, name string) error
	// Busy tells whether a filesystem on device is mounted in any mount
	// namespace.
	Busy(device string) (bool, error)
	Path(name string) string
}

// Service is one storage service of the endpoint: a named driver.
type Service struct {
	Name   string
	Driver drivers.Driver
}

// Plugin implements volume.Driver.
type Plugin struct {
	cfg      config.Config
	services []Service // the first is the default
	mnt      Mounter
	st       *state.Store
	log      logrus.FieldLogger
	locks    *locks
	instance string
	ready    chan struct{} // closed once Restore has run
	// inherited are the mount IDs the ledger held at start, which may
	// have lost their Unmount.
	inherited *inherited
	platform  *platform
	// readBound bounds the reading of one request (requestRead).
	readBound time.Duration
}

// New assembles a plugin over one or more services, the first the default.
// Nothing slow happens here: call Restore after the socket listens.
func New(cfg config.Config, services []Service, mnt Mounter, st *state.Store, log logrus.FieldLogger) *Plugin {
	return &Plugin{
		cfg:      cfg,
		services: services,
		mnt:      mnt,
		st:       st,
		log:      log,
		locks:    newLocks(),
		ready:    make(chan struct{}),

		inherited: newInherited(),
		platform:  newPlatform(log),

		readBound: requestRead,
	}
}

var _ volume.Driver = (*Plugin)(nil)

// begin waits for start-up to finish and takes the volume's lock, within
// opTimeout. The returned done releases the lock and logs the call at debug
// level.
func (p *Plugin) begin(parent context.Context, op, name string) (context.Context, func(), error) {
	if err := drivers.ValidateName(name); err != nil {
		return nil, nil, err
	}
	start := time.Now()
	ctx, cancel := context.WithTimeout(parent, opTimeout)
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

// service finds a service by name; "" is the default one.
func (p *Plugin) service(name string) (Service, error) {
	if name == "" {
		return p.services[0], nil
	}
	for _, s := range p.services {
		if s.Name == name {
			return s, nil
		}
	}
	return Service{}, fmt.Errorf("unknown service %q: this endpoint has %s", name, strings.Join(p.ServiceNames(), ", "))
}

// ServiceNames lists the services, the default first.
func (p *Plugin) ServiceNames() []string {
	names := make([]string, len(p.services))
	for i, s := range p.services {
		names[i] = s.Name
	}
	return names
}

// serviceOf is the service holding v. Volumes catalogued before services
// had names belong to the default one.
func (p *Plugin) serviceOf(v drivers.Volume) Service {
	s, err := p.service(v.Service)
	if err != nil {
		return p.services[0]
	}
	return s
}

// driverFor is the driver of the named volume: the catalogue's service of
// a volume this host knows, so that a volume its platform lost is still
// released there; else the service that has it, or the default one.
func (p *Plugin) driverFor(ctx context.Context, name string) drivers.Driver {
	if v, known, err := p.st.Volume(name); err == nil && known {
		return p.serviceOf(v).Driver
	}
	v, err := p.lookup(ctx, name)
	if err != nil {
		return p.services[0].Driver
	}
	return p.serviceOf(v).Driver
}

// Create implements volume.Driver. Docker re-sends Create for volumes it
// knows: the same or no options succeed and change nothing.
func (p *Plugin) Create(r *volume.CreateRequest) error {
	req, err := parseCreate(r.Options, p.defaults())
	if err != nil {
		return fmt.Errorf("create volume %s: %w", r.Name, err)
	}
	ctx, done, err := p.begin(context.Background(), "create", r.Name)
	if err != nil {
		return fmt.Errorf("create volume %s: %w", r.Name, err)
	}
	defer done()
	return p.create(ctx, r.Name, req)
}

// existing accepts a Create of a volume that exists when it asks for what
// the volume is; drivers.ErrNotFound when there is none.
func (p *Plugin) existing(ctx context.Context, name string, req createRequest) error {
	v, err := p.lookup(ctx, name)
	switch {
	case err != nil:
		return err
	case req.service != "" && p.serviceOf(v).Name != req.service:
		return fmt.Errorf("the name is taken in service %s; volume names are unique across services", p.serviceOf(v).Name)
	}
	if diffs := req.conflicts(v); len(diffs) > 0 {
		return fmt.Errorf("it exists and differs: %v; remove it first or pick another name", diffs)
	}
	return nil
}

func (p *Plugin) create(ctx context.Context, name string, req createRequest) error {
	err := p.existing(ctx, name, req)
	switch {
	case err == nil:
		return nil
	case !errors.Is(err, drivers.ErrNotFound):
		return fmt.Errorf("create volume %s: %w", name, err)
	case p.cfg.Ops.CreateDisable:
		return fmt.Errorf("create volume %s: creating volumes is disabled (%s_CREATE_DISABLE)", name, config.OpsPrefix)
	}
	var (
		v   drivers.Volume
		svc Service
	)
	switch {
	case req.opts.FromVolume != "":
		v, svc, err = p.createCopy(ctx, name, req)
	case req.opts.FromSnapshot != "":
		v, svc, err = p.createFromSnapshot(ctx, name, req)
	default:
		if svc, err = p.service(req.service); err == nil {
			v, err = svc.Driver.Create(ctx, name, req.opts)
		}
	}
	if errors.Is(err, drivers.ErrExists) {
		// Another host sharing the store created it meanwhile: it is the
		// same volume, never a second one.
		if err := p.existing(ctx, name, req); err != nil {
			return fmt.Errorf("create volume %s: %w", name, err)
		}
		return nil
	}
	if err != nil {
		return err
	}
	v.Service = svc.Name
	if err := p.st.PutVolume(v); err != nil {
		svc.Driver.Remove(ctx, name)
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

// createCopy makes a volume a copy of another in its service. A source
// mounted on this host is frozen for the copy, so the copy is never torn.
func (p *Plugin) createCopy(ctx context.Context, name string, req createRequest) (drivers.Volume, Service, error) {
	from := req.opts.FromVolume
	if from == name {
		// Its lock is held already: taking it again would wait out ctx.
		return drivers.Volume{}, Service{}, fmt.Errorf("create volume %s: a volume cannot be a copy of itself", name)
	}
	unlock, err := p.locks.lock(ctx, from)
	if err != nil {
		return drivers.Volume{}, Service{}, fmt.Errorf("create volume %s: %w", name, err)
	}
	defer unlock()
	src, err := p.lookup(ctx, from)
	if err != nil {
		return drivers.Volume{}, Service{}, fmt.Errorf("create volume %s: source volume %s: %w", name, from, err)
	}
	svc, err := p.sameService(name, req, p.serviceOf(src), "volume "+from)
	if err == nil {
		err = keepFS(name, &req, src.FSType, "volume "+from)
	}
	if err != nil {
		return drivers.Volume{}, Service{}, err
	}
	thaw, err := p.mnt.Freeze(from)
	if err != nil {
		return drivers.Volume{}, Service{}, fmt.Errorf("create volume %s: %w", name, err)
	}
	v, err := svc.Driver.Create(ctx, name, req.opts)
	if terr := thaw(); terr != nil {
		p.log.WithField("volume", from).Errorf("after copying it: %v", terr)
	}
	return v, svc, err
}

// createFromSnapshot makes a volume a copy of a snapshot, in the
// snapshot's service.
func (p *Plugin) createFromSnapshot(ctx context.Context, name string, req createRequest) (drivers.Volume, Service, error) {
	snap, src, err := p.findSnapshot(ctx, req.opts.FromSnapshot)
	if err != nil {
		return drivers.Volume{}, Service{}, fmt.Errorf("create volume %s: %w", name, err)
	}
	svc, err := p.sameService(name, req, src, "snapshot "+snap.Name)
	if err == nil {
		err = keepFS(name, &req, snap.FSType, "snapshot "+snap.Name)
	}
	if err != nil {
		return drivers.Volume{}, Service{}, err
	}
	v, err := svc.Driver.Create(ctx, name, req.opts)
	return v, svc, err
}

// sameService checks that a copy goes where its source is: a copy is made
// inside one store.
func (p *Plugin) sameService(name string, req createRequest, src Service, what string) (Service, error) {
	if req.service != "" && req.service != src.Name {
		return Service{}, fmt.Errorf("create volume %s: %s is in service %s, and a copy is made in its source's service; drop service=%s", name, what, src.Name, req.service)
	}
	return src, nil
}

// keepFS gives a copy its source's filesystem unless another one is asked
// for with overwritefs, which formats the copy.
func keepFS(name string, req *createRequest, fsType, what string) error {
	switch {
	case !req.given[optNewFSType]:
		req.opts.FSType = fsType
	case req.opts.FSType != fsType && !req.overwrite:
		return fmt.Errorf("create volume %s: a copy of %s keeps its filesystem (%s); add overwritefs=true to format it as %s instead", name, what, fsType, req.opts.FSType)
	}
	return nil
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
	return p.RemoveVolume(context.Background(), r.Name)
}

// RemoveVolume removes a volume, within ctx.
func (p *Plugin) RemoveVolume(ctx context.Context, name string) error {
	ctx, done, err := p.begin(ctx, "remove", name)
	if err != nil {
		return fmt.Errorf("remove volume %s: %w", name, err)
	}
	defer done()

	if p.cfg.Ops.RemoveDisable {
		// As REX-Ray: Docker forgets the volume, the data stays.
		p.log.WithField("volume", name).Warn("remove disabled: keeping the volume's data")
		return nil
	}
	ids, err := p.st.Mounts(name)
	if err != nil {
		return fmt.Errorf("remove volume %s: %w", name, err)
	}
	if len(ids) > 0 {
		if !p.cfg.Ops.RemoveForce {
			if ids = p.withoutStale(ctx, name, ids); len(ids) > 0 {
				return fmt.Errorf("remove volume %s: in use by %d container mount(s)", name, len(ids))
			}
		}
		if err := p.release(ctx, name); err != nil {
			return fmt.Errorf("remove volume %s: %w", name, err)
		}
	}
	now := time.Now()
	retry, err := p.st.MarkRemoving(name, now, now.Add(-removeMemory))
	if err != nil {
		return fmt.Errorf("remove volume %s: %w", name, err)
	}
	if err := p.driverFor(ctx, name).Remove(ctx, name); errors.Is(err, drivers.ErrNotFound) {
		if err := p.goneAlready(name, retry, err); err != nil {
			return err
		}
	} else if err != nil {
		return err
	}
	if err := p.st.DeleteVolume(name); err != nil {
		return fmt.Errorf("remove volume %s: %w", name, err)
	}
	p.log.WithField("volume", name).Info("removed")
	return nil
}

// reservedIDs begins the ledger keys of holders that are not a client's
// mount ID; validID refuses it, so no client's ID can collide with them.
const reservedIDs = "rexray:"

// legacyID holds a volume for the clients from before Docker 1.12 (Docker
// 1.11's protocol, the original dvdcli), whose Mount and Unmount carry no
// ID. Such clients counted their own mounts, so they share this one
// holder: every Mount with no ID holds it, and the first Unmount with no ID
// releases it.
const legacyID = reservedIDs + "legacy"

// holderID is the ledger key of the mount ID a client sent: dockerd's are
// 64 hex digits, a client from before mount IDs sends none.
func holderID(id string) (string, error) {
	if id == "" {
		return legacyID, nil
	}
	return id, validID(id)
}

// validID refuses a mount ID the ledger cannot key, or one that could be
// taken for a reserved holder.
func validID(id string) error {
	if len(id) > 1024 {
		return fmt.Errorf("invalid mount ID: %d bytes long, 1 to 1024 are accepted", len(id))
	}
	if strings.HasPrefix(id, reservedIDs) {
		return fmt.Errorf("invalid mount ID %q: IDs beginning with %q are reserved", id, reservedIDs)
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
	id, err := holderID(r.ID)
	if err != nil {
		return nil, fmt.Errorf("mount volume %s: %w", r.Name, err)
	}
	path, err := p.mountFor(context.Background(), r.Name, id, p.cfg.Ops.CreateImplicit)
	if err != nil {
		return nil, err
	}
	return &volume.MountResponse{Mountpoint: path}, nil
}

// mountFor mounts a volume for one mount ID, creating it first if implicit.
func (p *Plugin) mountFor(ctx context.Context, name, id string, implicit bool) (string, error) {
	ctx, done, err := p.begin(ctx, "mount "+id, name)
	if err != nil {
		return "", fmt.Errorf("mount volume %s: %w", name, err)
	}
	defer done()

	v, err := p.lookup(ctx, name)
	if errors.Is(err, drivers.ErrNotFound) && implicit {
		err = p.create(ctx, name, createRequest{opts: p.implicitOptions()})
		if err == nil {
			v, err = p.lookup(ctx, name)
		}
	}
	if err != nil {
		return "", fmt.Errorf("mount volume %s: %w", name, err)
	}
	path, err := p.mount(ctx, v)
	if err != nil {
		return "", err
	}
	if _, _, err := p.st.AddMount(name, id); err != nil {
		if ids, lerr := p.st.Mounts(name); lerr == nil && len(ids) == 0 {
			p.releaseLogged(ctx, name) // mounted for nobody
		}
		return "", fmt.Errorf("mount volume %s: %w", name, err)
	}
	p.inherited.drop(name, id) // its Unmount will come to this plugin
	return path, nil
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
	drv := p.serviceOf(v).Driver
	dev, err := drv.Attach(ctx, v.Name, p.cfg.Preempting())
	if err != nil {
		return "", fmt.Errorf("mount volume %s: %w", v.Name, howToTakeOver(err))
	}
	path, err := p.mountDevice(ctx, v, dev)
	if err != nil {
		if derr := drv.Detach(ctx, v.Name); derr != nil {
			p.log.WithField("volume", v.Name).Errorf("after a failed mount: %v", derr)
		}
		return "", fmt.Errorf("mount volume %s: %w", v.Name, err)
	}
	return path, nil
}

// mountDevice formats (when needed) and mounts an attached volume. The
// decision to format rests on the volume's record as lookup found it on
// its platform (another host may have formatted it, or made it anew, since
// this host catalogued it): a volume whose filesystem was recorded is
// never formatted again unless overwritefs asks for it.
func (p *Plugin) mountDevice(ctx context.Context, v drivers.Volume, dev string) (string, error) {
	overwrite, err := p.st.Overwrite(v.Name)
	if err != nil {
		return "", err
	}
	return p.mountAs(ctx, p.serviceOf(v).Driver, v, dev, overwrite)
}

// mountAs formats (when v's record allows it) and mounts v's device.
func (p *Plugin) mountAs(ctx context.Context, drv drivers.Driver, v drivers.Volume, dev string, overwrite bool) (string, error) {
	content := p.content(ctx, drv, v, overwrite)
	fsType := v.FSType
	if fsType == "" {
		// Made outside rexray (a plain `rbd create`): a filesystem already
		// on it is found by the probe, else it gets the default one.
		fsType = p.cfg.DefaultFSType()
	}
	path, err := p.mnt.Mount(ctx, dev, v.Name, fsType, content)
	var nofs *mount.NoFilesystemError
	if errors.As(err, &nofs) {
		return "", unrecognised(v, fsType, dev, err)
	}
	if err != nil {
		return "", err
	}
	if v.Formatted.IsZero() {
		if err := p.recordFormat(ctx, drv, v); err != nil {
			p.mnt.Unmount(ctx, v.Name)
			return "", err
		}
	}
	if !overwrite {
		return path, nil
	}
	// overwritefs applies to the first mount only: later mounts keep data.
	if err := p.st.SetOverwrite(v.Name, false); err != nil {
		p.mnt.Unmount(ctx, v.Name)
		return "", err
	}
	return path, nil
}

// content is what Mount may assume of the volume's device.
//
// A volume with no record either way was made before the record existed.
// Blank, it was never mounted, and is formatted; with a filesystem, that
// is recorded. With data and no filesystem that can be recognised it may
// be a damaged one, or a first mkfs cut off: nothing says which, and
// formatting the one would destroy data that fsck could recover, so its
// mount is refused, saying how to check and how to start over.
func (p *Plugin) content(ctx context.Context, drv drivers.Driver, v drivers.Volume, overwrite bool) mount.Content {
	switch {
	case !overwrite && !v.Formatted.IsZero():
		return mount.Existing
	case p.blank(ctx, drv, v.Name):
		return mount.Zeros
	case overwrite:
		return mount.Discard
	case v.Unformatted:
		return mount.Unknown
	}
	return mount.Existing
}

// blank tells whether the driver knows the volume was never written to.
func (p *Plugin) blank(ctx context.Context, drv drivers.Driver, name string) bool {
	bc, ok := drv.(drivers.BlankChecker)
	if !ok {
		return false
	}
	blank, err := bc.Blank(ctx, name)
	if err != nil {
		p.log.WithField("volume", name).Warnf("cannot tell whether it was ever written to: %v", err)
	}
	return blank
}

// recordFormat records, with the volume on its platform and in the
// catalogue, that it holds a filesystem now.
func (p *Plugin) recordFormat(ctx context.Context, drv drivers.Driver, v drivers.Volume) error {
	fr, ok := drv.(drivers.FormatRecorder)
	if !ok {
		return nil
	}
	now := time.Now()
	if err := fr.RecordFormat(ctx, v.Name, now); err != nil {
		return err
	}
	v.Meta = v.Meta.FormatRecord(now)
	v.Device = ""
	return p.st.PutVolume(v)
}

// unrecognised is the error for a volume whose device holds no filesystem
// that can be recognised, and that is not formatted for it.
func unrecognised(v drivers.Volume, fsType, dev string, err error) error {
	why := "though its first mount made one (" + v.Formatted.UTC().Format(time.RFC3339) + "): it is damaged"
	if v.Formatted.IsZero() {
		why = "and it holds data but no record of a first format (it was made before rexray kept one): it may be a damaged filesystem"
	}
	target, where := dev, ""
	if img := v.Fields["image"]; img != "" {
		// A device is gone once the mount fails; the image stays.
		target, where = img, " (the volume's image in the store)"
	}
	check, repair, hint := mount.CheckCommands(fsType, target)
	return fmt.Errorf("%w, %s, and it is not formatted again: its data may well be recoverable. Check it with `%s`%s, repair it with `%s`%s; `rexray volume attach %s` gives it a device. To start over with an empty volume instead, remove it (`docker volume rm %s`) and create it again",
		err, why, check, where, repair, hint, v.Name, v.Name)
}

// Unmount implements volume.Driver. The last mount ID out unmounts and
// detaches. An unknown ID is not an error.
func (p *Plugin) Unmount(r *volume.UnmountRequest) error {
	id, err := holderID(r.ID)
	if err != nil {
		return fmt.Errorf("unmount volume %s: %w", r.Name, err)
	}
	return p.unmountFor(context.Background(), r.Name, id)
}

// unmountFor releases one mount ID's hold on a volume.
func (p *Plugin) unmountFor(ctx context.Context, name, id string) error {
	ctx, done, err := p.begin(ctx, "unmount "+id, name)
	if err != nil {
		return fmt.Errorf("unmount volume %s: %w", name, err)
	}
	defer done()

	left, removed, err := p.st.RemoveMount(name, id)
	if err != nil {
		return fmt.Errorf("unmount volume %s: %w", name, err)
	}
	if !removed {
		p.log.WithField("volume", name).Warnf("unmount of unknown mount ID %s", id)
	}
	p.inherited.drop(name, id)
	if left > 0 && !p.cfg.Ops.UnmountIgnoreUsedCount {
		ids, err := p.st.Mounts(name)
		if err != nil {
			return fmt.Errorf("unmount volume %s: %w", name, err)
		}
		if len(p.withoutStale(ctx, name, ids)) > 0 {
			return p.unmountIfOnlyAttached(ctx, name)
		}
	}
	if err := p.release(ctx, name); err != nil {
		return fmt.Errorf("unmount volume %s: %w", name, err)
	}
	return nil
}

// release unmounts and detaches a volume and forgets its mount IDs.
func (p *Plugin) release(ctx context.Context, name string) error {
	if err := p.mnt.Unmount(ctx, name); err != nil {
		return err
	}
	if err := p.driverFor(ctx, name).Detach(ctx, name); err != nil && !errors.Is(err, drivers.ErrNotFound) {
		return err
	}
	p.inherited.clear(name)
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

// Get implements volume.Driver from the platform: a volume another host
// created is found, and one another host removed is not. A platform that
// does not answer in time leaves the catalogue to answer for a volume this
// host knows, or dockerd forgets a volume that exists.
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

// List implements volume.Driver: the platforms' names, with the volumes
// this host has mounted. A platform that does not answer in time is stood
// in for by this host's catalogue. As the protocol defines it, List carries
// names and mount points: dockerd asks Get for the rest, so no volume's
// record is read here.
func (p *Plugin) List() (*volume.ListResponse, error) {
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	if err := p.waitReady(ctx); err != nil {
		return nil, err
	}
	listed, silent := p.listNames(ctx)
	var known []string
	if len(silent) > 0 {
		var err error
		if known, err = p.st.VolumeNames(); err != nil {
			return nil, err
		}
	}
	counts, err := p.st.MountedVolumes()
	if err != nil {
		return nil, err
	}
	mounted := make([]string, 0, len(counts))
	for name := range counts {
		mounted = append(mounted, name)
	}
	slices.Sort(mounted)
	names := union(listed, known, mounted)
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
	if v.Snapshot != "" {
		fields["snapshot"] = v.Snapshot
	}
	if len(v.Snapshots) > 0 {
		fields["snapshots"] = strings.Join(v.Snapshots, ",")
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
			"service":          p.serviceOf(v).Name,
			"server":           p.instance,
		},
	}
	if mounted {
		dv.Mountpoint = p.mnt.Path(v.Name)
	}
	return dv
}
