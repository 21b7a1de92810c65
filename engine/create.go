package engine

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/docker/go-units"

	"github.com/rexray/rexray/config"
	"github.com/rexray/rexray/drivers"
	"github.com/rexray/rexray/engine/events"
	"github.com/rexray/rexray/engine/keys"
	"github.com/rexray/rexray/engine/options"
)

// Create makes a volume with the given create options (package options).
// A Create of a volume that exists with the same or no options succeeds
// and changes nothing: Docker re-sends Create for the volumes it knows.
func (e *Engine) Create(ctx context.Context, name string, opts map[string]string) error {
	return e.createAs(ctx, name, opts, false)
}

// CreateCluster is Create for a Swarm cluster volume (Meta.Cluster).
func (e *Engine) CreateCluster(ctx context.Context, name string, opts map[string]string) error {
	return e.createAs(ctx, name, opts, true)
}

func (e *Engine) createAs(ctx context.Context, name string, opts map[string]string, cluster bool) error {
	req, err := options.Parse(opts, options.DefaultsOf(e.cfg))
	if err != nil {
		return fmt.Errorf("create volume %s: %w", name, err)
	}
	req.Opts.Cluster = cluster
	ctx, done, err := e.begin(ctx, "create", name)
	if err != nil {
		return fmt.Errorf("create volume %s: %w", name, err)
	}
	defer done()
	return e.create(ctx, name, req)
}

// existing accepts a Create of a volume that exists when it asks for what
// the volume is, and refuses it with drivers.ErrExists when it differs;
// drivers.ErrNotFound when there is none.
func (e *Engine) existing(ctx context.Context, name string, req options.Request) error {
	v, err := e.lookup(ctx, name)
	switch {
	case err != nil:
		return err
	case req.Service != "" && e.serviceOf(v).Name != req.Service:
		return taken{fmt.Sprintf("the name is taken in service %s; volume names are unique across services", e.serviceOf(v).Name)}
	case v.Cluster && !req.Opts.Cluster:
		return taken{"the name is taken by a Swarm cluster volume; volume names are unique across classic and cluster volumes"}
	case !v.Cluster && req.Opts.Cluster:
		return taken{"the name is taken by a classic volume; volume names are unique across classic and cluster volumes"}
	}
	if diffs := req.Conflicts(v); len(diffs) > 0 {
		return taken{fmt.Sprintf("it exists and differs: %v; remove it first or pick another name", diffs)}
	}
	return nil
}

// taken refuses a Create of a name another volume has: its own message,
// matching drivers.ErrExists.
type taken struct{ msg string }

func (e taken) Error() string        { return e.msg }
func (e taken) Is(target error) bool { return target == drivers.ErrExists }

func (e *Engine) create(ctx context.Context, name string, req options.Request) error {
	err := e.existing(ctx, name, req)
	switch {
	case err == nil:
		return nil
	case !errors.Is(err, drivers.ErrNotFound):
		return fmt.Errorf("create volume %s: %w", name, err)
	case e.cfg.Ops.CreateDisable:
		return fmt.Errorf("create volume %s: creating volumes is disabled (%s_CREATE_DISABLE)", name, config.OpsPrefix)
	}
	var (
		v   drivers.Volume
		svc Service
	)
	start := time.Now()
	switch {
	case req.Opts.FromVolume != "":
		v, svc, err = e.createCopy(ctx, name, req)
	case req.Opts.FromSnapshot != "":
		v, svc, err = e.createFromSnapshot(ctx, name, req)
	default:
		if svc, err = e.service(req.Service); err == nil {
			v, err = e.createNew(ctx, svc, name, req)
		}
	}
	if errors.Is(err, drivers.ErrExists) {
		// Another host sharing the store created it meanwhile: it is the
		// same volume, never a second one.
		if err := e.existing(ctx, name, req); err != nil {
			return fmt.Errorf("create volume %s: %w", name, err)
		}
		return nil
	}
	if err != nil {
		return err
	}
	v.Service = svc.Name
	if err := e.led.PutVolume(v); err != nil {
		svc.Driver.Remove(ctx, name)
		return fmt.Errorf("create volume %s: %w", name, err)
	}
	if req.Overwrite {
		if err := e.led.SetOverwrite(name, true); err != nil {
			return fmt.Errorf("create volume %s: %w", name, err)
		}
	}
	e.logFor(ctx, name).Infof("created (%s, %s)", units.BytesSize(float64(v.Size)), v.FSType)
	e.emit(ctx, events.Event{Kind: events.Create, Volume: name, Service: svc.Name, Bytes: v.Size})
	if from := req.Opts.FromVolume + req.Opts.FromSnapshot; from != "" {
		e.emit(ctx, events.Event{Kind: events.Copy, Volume: name, Service: svc.Name, From: from, Bytes: v.Size, Seconds: time.Since(start).Seconds()})
	}
	return nil
}

// createNew makes a volume that copies nothing: an encrypted one is
// refused at once on a host without dm-crypt, and gets its key first.
func (e *Engine) createNew(ctx context.Context, svc Service, name string, req options.Request) (drivers.Volume, error) {
	if !req.Opts.Encrypted {
		return svc.Driver.Create(ctx, name, req.Opts)
	}
	if err := e.canEncrypt(name); err != nil {
		return drivers.Volume{}, err
	}
	return e.createKeyed(ctx, svc, name, req, "")
}

// createKeyed creates an encrypted volume with its key, a copy of the key
// at from or a new one: a failed create leaves no key it made.
func (e *Engine) createKeyed(ctx context.Context, svc Service, name string, req options.Request, from string) (drivers.Volume, error) {
	undo, err := e.newKey(ctx, name, from)
	if err != nil {
		return drivers.Volume{}, err
	}
	v, err := svc.Driver.Create(ctx, name, req.Opts)
	if err != nil {
		undo()
	}
	return v, err
}

// createCopy makes a volume a copy of another in its service. A source
// mounted on this host is frozen for the copy, so the copy is never torn.
func (e *Engine) createCopy(ctx context.Context, name string, req options.Request) (drivers.Volume, Service, error) {
	from := req.Opts.FromVolume
	if from == name {
		// Its lock is held already: taking it again would wait out ctx.
		return drivers.Volume{}, Service{}, fmt.Errorf("create volume %s: a volume cannot be a copy of itself", name)
	}
	unlock, err := e.locks.Lock(ctx, from)
	if err != nil {
		return drivers.Volume{}, Service{}, fmt.Errorf("create volume %s: %w", name, err)
	}
	defer unlock()
	src, err := e.lookup(ctx, from)
	if err != nil {
		return drivers.Volume{}, Service{}, fmt.Errorf("create volume %s: source volume %s: %w", name, from, err)
	}
	svc, err := e.sameService(name, req, e.serviceOf(src), "volume "+from)
	if err == nil {
		err = keepFS(name, &req, src.FSType, "volume "+from)
	}
	if err == nil {
		gave := req.GaveEncrypted()
		err = keepEncryption(name, &gave, &req.Opts.Encrypted, src.Encrypted, "volume "+from)
	}
	if err == nil && src.Encrypted {
		err = e.canEncrypt(name)
	}
	req.Opts.Shape = options.KeepShape(req, src.Shape)
	if err != nil {
		return drivers.Volume{}, Service{}, err
	}
	thaw, err := e.mnt.Freeze(from)
	if err != nil {
		return drivers.Volume{}, Service{}, fmt.Errorf("create volume %s: %w", name, err)
	}
	var v drivers.Volume
	if src.Encrypted {
		v, err = e.createKeyed(ctx, svc, name, req, e.keys.Path(from))
	} else {
		v, err = svc.Driver.Create(ctx, name, req.Opts)
	}
	if terr := thaw(); terr != nil {
		e.logFor(ctx, from).Errorf("after copying it: %v", terr)
	}
	return v, svc, err
}

// createFromSnapshot makes a volume a copy of a snapshot, in the
// snapshot's service.
func (e *Engine) createFromSnapshot(ctx context.Context, name string, req options.Request) (drivers.Volume, Service, error) {
	snap, src, err := e.findSnapshot(ctx, req.Opts.FromSnapshot)
	if err != nil {
		return drivers.Volume{}, Service{}, fmt.Errorf("create volume %s: %w", name, err)
	}
	svc, err := e.sameService(name, req, src, "snapshot "+snap.Name)
	if err == nil {
		err = keepFS(name, &req, snap.FSType, "snapshot "+snap.Name)
	}
	keyPath := e.keys.SnapshotPath(snap.Name)
	encrypted := snap.Encrypted || keys.Exists(keyPath)
	if err == nil {
		gave := req.GaveEncrypted()
		err = keepEncryption(name, &gave, &req.Opts.Encrypted, encrypted, "snapshot "+snap.Name)
	}
	if err == nil && encrypted {
		err = e.canEncrypt(name)
	}
	if err != nil {
		return drivers.Volume{}, Service{}, err
	}
	if encrypted {
		v, err := e.createKeyed(ctx, svc, name, req, keyPath)
		return v, svc, err
	}
	v, err := svc.Driver.Create(ctx, name, req.Opts)
	return v, svc, err
}

// sameService checks that a copy goes where its source is: a copy is made
// inside one store.
func (e *Engine) sameService(name string, req options.Request, src Service, what string) (Service, error) {
	if req.Service != "" && req.Service != src.Name {
		return Service{}, fmt.Errorf("create volume %s: %s is in service %s, and a copy is made in its source's service; drop service=%s", name, what, src.Name, req.Service)
	}
	return src, nil
}

// keepFS gives a copy its source's filesystem unless another one is asked
// for with overwritefs, which formats the copy.
func keepFS(name string, req *options.Request, fsType, what string) error {
	switch {
	case !req.GaveFSType():
		req.Opts.FSType = fsType
	case req.Opts.FSType != fsType && !req.Overwrite:
		return fmt.Errorf("create volume %s: a copy of %s keeps its filesystem (%s); add overwritefs=true to format it as %s instead", name, what, fsType, req.Opts.FSType)
	}
	return nil
}
