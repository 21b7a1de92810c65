// Package engine holds the rules every front door shares (Docker's volume
// plugin API, the operator's CLI, later CSI): per-volume locks, the ledger
// of holds, create, mount and remove with their checks, preempt and its
// fencing, the catalogue that answers for a platform that does not, and
// restore after a restart. It knows no HTTP, no gRPC and no Docker types.
package engine

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/rexray/rexray/config"
	"github.com/rexray/rexray/drivers"
	"github.com/rexray/rexray/engine/events"
	"github.com/rexray/rexray/engine/keys"
	"github.com/rexray/rexray/engine/ledger"
	"github.com/rexray/rexray/engine/locks"
	"github.com/rexray/rexray/engine/platform"
	"github.com/rexray/rexray/internal/reqid"
	"github.com/rexray/rexray/mount"
	"github.com/rexray/rexray/mount/luks"
)

// opTimeout bounds every call: `docker plugin enable` gives a call 30 s, and
// a slow step must fail with a clear error rather than hang.
const opTimeout = 25 * time.Second

// Mounter is the OS side the engine needs: package mount, or a fake in tests.
type Mounter interface {
	Mount(ctx context.Context, device, name string, spec mount.Spec) (string, error)
	Unmount(ctx context.Context, name string) error
	IsMounted(name string) (bool, error)
	Mounted() (map[string]string, error)
	Freeze(name string) (thaw func() error, err error)
	Fence(ctx context.Context, name string) error
	// Busy tells whether a filesystem on device is mounted in any mount
	// namespace.
	Busy(device string) (bool, error)
	Path(name string) string
	// Grow grows the filesystem of a mounted volume, online, to the size
	// of its device.
	Grow(ctx context.Context, device, name string) error
	// Usage is how full a mounted volume's filesystem is.
	Usage(name string) (mount.Usage, error)
}

// Service is one storage service of the endpoint: a named driver.
type Service struct {
	Name   string
	Driver drivers.Driver
}

// Engine gives volumes their semantics on top of the services' drivers
// and the OS mount code.
type Engine struct {
	cfg      config.Config
	services []Service // the first is the default
	mnt      Mounter
	led      *ledger.Store
	log      logrus.FieldLogger
	locks    *locks.Set
	instance string
	ready    chan struct{} // closed once Restore has run
	// inherited are the Docker mount IDs the ledger held at start, which
	// may have lost their Unmount.
	inherited *inherited
	platform  *platform.Asker
	// observers are told of every event (Observe).
	observers []events.Observer
	// crypt opens encrypted volumes, with the keys in keys.
	crypt Crypt
	keys  keys.Dir
}

// New assembles an engine over one or more services, the first the
// default. Nothing slow happens here: Run restores the state.
func New(cfg config.Config, services []Service, mnt Mounter, led *ledger.Store, log logrus.FieldLogger) *Engine {
	return &Engine{
		cfg:       cfg,
		services:  services,
		mnt:       mnt,
		led:       led,
		log:       log,
		locks:     locks.New(),
		ready:     make(chan struct{}),
		inherited: newInherited(),
		platform:  platform.NewAsker(log, time.Duration(cfg.PlatformWait)),
		crypt:     hostCrypt{luks.Host{Root: "/"}},
		keys:      keys.Dir(cfg.KeyDir),
	}
}

// Run restores the state, then keeps the services' holds (Watcher) until
// ctx ends. Calls wait for the restore.
func (e *Engine) Run(ctx context.Context) {
	e.Restore(ctx)
	e.watch(ctx)
}

// begin waits for start-up to finish and takes the volume's lock, within
// opTimeout. The context it returns carries the call's logger (fields
// volume, op and a request ID req) for every line the call logs, drivers'
// included. done releases the lock and logs the call at debug level.
func (e *Engine) begin(parent context.Context, op, name string) (context.Context, func(), error) {
	if err := drivers.ValidateName(name); err != nil {
		return nil, nil, err
	}
	start := time.Now()
	ctx, cancel := context.WithTimeout(e.withLog(parent, op, name), opTimeout)
	if err := e.waitReady(ctx); err != nil {
		cancel()
		return nil, nil, err
	}
	unlock, err := e.locks.Lock(ctx, name)
	if err != nil {
		cancel()
		return nil, nil, err
	}
	return ctx, func() {
		unlock()
		cancel()
		e.logFor(ctx, name).Debugf("took %s", time.Since(start))
	}, nil
}

// withLog is ctx with the logger of one call, under the request ID its
// front door gave it (a new one for a call no front door made: a fence).
// A call inside another (a mount's implicit create) keeps the outer
// call's logger.
func (e *Engine) withLog(ctx context.Context, op, name string) context.Context {
	ctx, id := reqid.Ensure(ctx)
	log := drivers.LogFrom(ctx, nil)
	if log == nil {
		log = e.log.WithField("req", id)
	}
	return drivers.WithLog(ctx, log.WithFields(logrus.Fields{"op": op, "volume": name}))
}

// logFor is the logger of the call in ctx, or the engine's, for a volume.
func (e *Engine) logFor(ctx context.Context, name string) logrus.FieldLogger {
	log := drivers.LogFrom(ctx, nil)
	if log == nil {
		log = e.log
		if id := reqid.From(ctx); id != "" {
			log = log.WithField("req", id)
		}
	}
	return log.WithField("volume", name)
}

func (e *Engine) waitReady(ctx context.Context) error {
	select {
	case <-e.ready:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("rexray is still starting up (reconciling its state): %w", ctx.Err())
	}
}

// service finds a service by name; "" is the default one.
func (e *Engine) service(name string) (Service, error) {
	if name == "" {
		return e.services[0], nil
	}
	for _, s := range e.services {
		if s.Name == name {
			return s, nil
		}
	}
	return Service{}, fmt.Errorf("unknown service %q: this endpoint has %s", name, strings.Join(e.ServiceNames(), ", "))
}

// ServiceNames lists the services, the default first.
func (e *Engine) ServiceNames() []string {
	names := make([]string, len(e.services))
	for i, s := range e.services {
		names[i] = s.Name
	}
	return names
}

// serviceOf is the service holding v. Volumes catalogued before services
// had names belong to the default one.
func (e *Engine) serviceOf(v drivers.Volume) Service {
	s, err := e.service(v.Service)
	if err != nil {
		return e.services[0]
	}
	return s
}

// driverFor is the driver of the named volume: the catalogue's service of
// a volume this host knows, so that a volume its platform lost is still
// released there; else the service that has it, or the default one.
func (e *Engine) driverFor(ctx context.Context, name string) drivers.Driver {
	if v, known, err := e.led.Volume(name); err == nil && known {
		return e.serviceOf(v).Driver
	}
	v, err := e.lookup(ctx, name)
	if err != nil {
		return e.services[0].Driver
	}
	return e.serviceOf(v).Driver
}

// Status is a volume as a front door shows it.
type Status struct {
	drivers.Volume
	// Held tells that something on this host holds it: it is mounted at
	// Mountpoint (or attached, for the operator).
	Held       bool
	Mountpoint string
}

// Get is a volume fresh from its platform: a volume another host created
// is found, and one another host removed is not. A platform that does not
// answer in time leaves the catalogue to answer for a volume this host
// knows, or dockerd forgets a volume that exists.
func (e *Engine) Get(ctx context.Context, name string) (Status, error) {
	if err := drivers.ValidateName(name); err != nil {
		return Status{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	if err := e.waitReady(ctx); err != nil {
		return Status{}, err
	}
	v, err := e.lookup(ctx, name)
	if err != nil {
		return Status{}, fmt.Errorf("get volume %s: %w", name, err)
	}
	holds, err := e.led.Holds(name)
	if err != nil {
		return Status{}, fmt.Errorf("get volume %s: %w", name, err)
	}
	v.Service = e.serviceOf(v).Name
	e.describe(&v)
	st := Status{Volume: v, Held: len(holds) > 0}
	if st.Held {
		st.Mountpoint = e.mnt.Path(name)
	}
	return st, nil
}

// Names lists the platforms' names, with the volumes this host holds, and
// the mount point of each held one, and whether the catalogue knows it as
// a cluster volume. A platform that does not answer in
// time is stood in for by this host's catalogue. No volume's record is
// read: at any number of volumes, this is one listing per platform.
func (e *Engine) Names(ctx context.Context) ([]Status, error) {
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	if err := e.waitReady(ctx); err != nil {
		return nil, err
	}
	listed, silent := e.listNames(ctx)
	var known []string
	if len(silent) > 0 {
		var err error
		if known, err = e.led.VolumeNames(); err != nil {
			return nil, err
		}
	}
	counts, err := e.led.HeldVolumes()
	if err != nil {
		return nil, err
	}
	held := make([]string, 0, len(counts))
	for name := range counts {
		held = append(held, name)
	}
	slices.Sort(held)
	names := platform.Union(listed, known, held)
	cluster, err := e.led.ClusterVolumes()
	if err != nil {
		return nil, err
	}
	out := make([]Status, len(names))
	for i, name := range names {
		out[i] = Status{Volume: drivers.Volume{Name: name}, Held: counts[name] > 0}
		out[i].Cluster = cluster[name] // what a front door shows depends on it
		if out[i].Held {
			out[i].Mountpoint = e.mnt.Path(name)
		}
	}
	return out, nil
}

// Instance is this host's ID on the default service's platform, once
// Restore has found it.
func (e *Engine) Instance() string {
	if !e.Ready() {
		return ""
	}
	return e.instance
}

// Locked counts the volumes whose lock a call holds or waits for: none
// once every call has returned, whatever its outcome.
func (e *Engine) Locked() int { return e.locks.Len() }
