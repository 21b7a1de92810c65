// Package rbd is the Ceph RBD driver: a volume is an RBD image, rexray's
// metadata lives with the image (image-meta) so every host sees the same
// volume, and ownership across hosts is Ceph's own: see attach.go.
//
// Names: volume NAME is image POOL/NAME, in RBD_DEFAULTPOOL unless the
// create option pool says otherwise; names are unique across the pools.
// Snapshot SNAP of volume NAME is the RBD snapshot POOL/NAME@SNAP; snapshot
// names are unique across the service, so a snapshot is found by its name
// alone. Snapshots rexray takes for its own use (copies of volumes) start
// with a '.', which no user's name can.
package rbd

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/kelseyhightower/envconfig"
	"github.com/sirupsen/logrus"

	"github.com/rexray/rexray/config"
	"github.com/rexray/rexray/drivers"
	"github.com/rexray/rexray/drivers/rbd/ceph"
)

// Name is the driver's registry name.
const Name = "rbd"

// Config is read from <SERVICE>_* environment variables: RBD_* for the
// default service.
type Config struct {
	// DefaultPool holds volumes created without the pool option.
	DefaultPool string `envconfig:"DEFAULTPOOL" default:"rbd"`
	// CephArgs are extra arguments for the Ceph tools (--id, --keyring,
	// -c ...), as REX-Ray's RBD_CEPHARGS; they are passed as CEPH_ARGS.
	CephArgs string `envconfig:"CEPHARGS"`
	// Attach picks how an image becomes a block device: auto (krbd where
	// the kernel has rbd, else rbd-nbd where it has nbd, else rbd-fuse plus
	// a loop device), or krbd, nbd, fuse.
	Attach string `envconfig:"ATTACH" default:"auto"`
	// FusePath is where rbd-fuse exposes images, in the plugin's own mount
	// namespace.
	FusePath string `envconfig:"FUSEPATH" default:"/run/rexray/rbd"`
	// LockCheck is how often attached volumes are checked for having been
	// taken (preempted) by another host.
	LockCheck time.Duration `envconfig:"LOCKCHECK" default:"5s"`
}

// Driver implements drivers.Driver over a Ceph cluster.
type Driver struct {
	cfg      Config
	settings []config.Setting
	instance string
	log      logrus.FieldLogger
	ceph     ceph.Tools
	att      attacher
	pooled   poolCache
	memo     memo
}

// poolsFresh is how long a listing of the cluster's pools is used again.
// Every look-up of a name not in the default pool lists them, a Create
// twice (the engine's look-up, then the driver's); pools come and go
// rarely, and one made meanwhile is looked in once this has passed.
const poolsFresh = 10 * time.Second

// poolCache is the last listing of the cluster's pools.
type poolCache struct {
	mu    sync.Mutex
	at    time.Time
	names []string
}

// FromEnv builds a service's driver from its <SERVICE>_* variables.
func FromEnv(ctx context.Context, s drivers.Settings) (drivers.Driver, error) {
	var cfg Config
	if err := envconfig.Process(s.Service, &cfg); err != nil {
		return nil, fmt.Errorf("rbd settings: %w", err)
	}
	d, err := New(cfg, s)
	if err != nil {
		return nil, err
	}
	d.settings = config.Describe(s.Service, cfg)
	return d, nil
}

// New builds a driver for the instance s names.
func New(cfg Config, s drivers.Settings) (*Driver, error) {
	if err := drivers.ValidateNameOf("pool", cfg.DefaultPool); err != nil {
		return nil, fmt.Errorf("RBD_DEFAULTPOOL: %w", err)
	}
	instance := s.InstanceID
	if err := drivers.ValidateNameOf("instance", instance); err != nil {
		return nil, fmt.Errorf("instance ID (REXRAY_INSTANCEID or the host name): %w", err)
	}
	log := s.Log
	if log == nil {
		log = logrus.StandardLogger()
	}
	d := &Driver{cfg: cfg, instance: instance, log: log, ceph: ceph.Tools{CephArgs: cfg.CephArgs}}
	att, err := chooseAttacher(cfg, d.ceph, instance)
	if err != nil {
		return nil, err
	}
	d.att = att
	return d, nil
}

// Settings implements drivers.Configured.
func (d *Driver) Settings() []config.Setting { return d.settings }

// Name implements drivers.Driver.
func (d *Driver) Name() string { return Name }

// Metadata keys of an image.
const (
	volumeKey   = "rexray.volume"    // JSON drivers.Meta
	ownerKey    = "rexray.owner"     // the instance the volume is attached to
	snapKeyPfx  = "rexray.snapshot." // + snapshot name: JSON snapshotMeta
	privatePfx  = "."                // snapshots rexray takes for itself
	imageFormat = "Mon Jan _2 15:04:05 2006"
)

type snapshotMeta struct {
	FSType    string    `json:"fsType,omitempty"`
	CreatedAt time.Time `json:"createdAt"`
}

// imageInfo is the part of `rbd info --format json` used here.
type imageInfo struct {
	Name    string `json:"name"`
	ID      string `json:"id"`
	Size    int64  `json:"size"`
	Created string `json:"create_timestamp"`
}

// listEntry is one entry of `rbd ls -l --format json`: an image, or one of
// its snapshots when Snapshot is set.
type listEntry struct {
	Image    string `json:"image"`
	Snapshot string `json:"snapshot"`
	Size     int64  `json:"size"`
}

func spec(pool, image string) string { return pool + "/" + image }

// know makes sure a later look-up searches pool, where a volume was just
// made: a listing without it is dropped.
func (c *poolCache) know(pool string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !slices.Contains(c.names, pool) {
		c.names = nil
	}
}

// pools lists the pools to look for volumes in, the default first, as
// listed within poolsFresh.
func (d *Driver) pools(ctx context.Context) ([]string, error) {
	c := &d.pooled
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.names != nil && time.Since(c.at) < poolsFresh {
		return slices.Clone(c.names), nil
	}
	out, err := d.ceph.Run(ctx, "rados", "lspools")
	if err != nil {
		return nil, fmt.Errorf("list pools: %w", err)
	}
	pools := []string{d.cfg.DefaultPool}
	for _, p := range strings.Fields(string(out)) {
		if p != d.cfg.DefaultPool {
			pools = append(pools, p)
		}
	}
	c.names, c.at = pools, time.Now()
	return slices.Clone(pools), nil
}

// list is `rbd ls -l` of a pool, once a call. A pool that is not an rbd
// pool (the mgr's own) lists nothing or fails; only the default pool must
// work.
func (d *Driver) list(ctx context.Context, pool string) ([]listEntry, error) {
	if e, ok := d.memo.get(ctx, listingKey(pool)); ok && e.listed {
		return e.entries, nil
	}
	var entries []listEntry
	err := d.ceph.RunJSON(ctx, &entries, "rbd", "ls", "-l", "-p", pool)
	if err != nil && pool != d.cfg.DefaultPool {
		entries, err = nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list pool %s (RBD_DEFAULTPOOL): %w", pool, err)
	}
	d.memo.update(ctx, listingKey(pool), func(e *memoEntry) { e.listed, e.entries = true, slices.Clone(entries) })
	return entries, nil
}

// find is the pool holding the image name, and its rbd info, as this call
// learnt them (memo.go) or else from the cluster.
func (d *Driver) find(ctx context.Context, name string) (string, imageInfo, error) {
	// A name not found is never remembered: another host may create it at
	// any moment, and a create that lost that race must then find it. Its
	// look in the default pool (rbd info) is always afresh; the other
	// pools are listed once a call (list).
	e, known := d.memo.get(ctx, name)
	if known && e.pool != "" && e.info.Name != "" {
		return e.pool, e.info, nil
	}
	pool, info, err := d.search(ctx, name, e.pool)
	switch {
	case err == nil:
		d.memo.update(ctx, name, func(e *memoEntry) { e.pool, e.info = pool, info })
	case errors.Is(err, drivers.ErrNotFound):
		d.memo.forget(ctx, name)
	}
	return pool, info, err
}

// search asks the cluster for the pool holding the image name: in pool
// first if given, then in the default pool, then in the others.
func (d *Driver) search(ctx context.Context, name, pool string) (string, imageInfo, error) {
	var info imageInfo
	first := d.cfg.DefaultPool
	if pool != "" {
		first = pool
	}
	err := d.ceph.RunJSON(ctx, &info, "rbd", "info", spec(first, name))
	if err == nil {
		return first, info, nil
	}
	if !errors.Is(err, syscall.ENOENT) {
		return "", info, err
	}
	pools, err := d.pools(ctx)
	if err != nil {
		return "", info, err
	}
	for _, p := range pools {
		if p == first {
			continue
		}
		entries, err := d.list(ctx, p)
		if err != nil {
			return "", info, err
		}
		for _, e := range entries {
			if e.Image == name && e.Snapshot == "" {
				err := d.ceph.RunJSON(ctx, &info, "rbd", "info", spec(p, name))
				return p, info, err
			}
		}
	}
	return "", info, drivers.ErrNotFound
}

// metaGet reads one image-meta key; a missing key is "".
func (d *Driver) metaGet(ctx context.Context, pool, image, key string) (string, error) {
	out, err := d.ceph.Run(ctx, "rbd", "image-meta", "get", spec(pool, image), key)
	if errors.Is(err, syscall.ENOENT) {
		return "", nil
	}
	return strings.TrimSuffix(string(out), "\n"), err
}

// metaList reads all of an image's image-meta. rbd prints nothing at all,
// not {}, for an image without any (one made with plain `rbd create`).
func (d *Driver) metaList(ctx context.Context, pool, image string) (map[string]string, error) {
	out, err := d.ceph.Run(ctx, "rbd", "image-meta", "list", spec(pool, image), "--format", "json")
	if err != nil {
		return nil, err
	}
	all := map[string]string{}
	if len(bytes.TrimSpace(out)) == 0 {
		return all, nil
	}
	if err := json.Unmarshal(out, &all); err != nil {
		return nil, fmt.Errorf("rbd image-meta list %s: unexpected output %.200q: %w", spec(pool, image), out, err)
	}
	return all, nil
}

func (d *Driver) metaSet(ctx context.Context, pool, image, key string, v any) error {
	val, ok := v.(string)
	if !ok {
		b, err := json.Marshal(v)
		if err != nil {
			return err
		}
		val = string(b)
	}
	_, err := d.ceph.Run(ctx, "rbd", "image-meta", "set", spec(pool, image), key, val)
	if err != nil {
		d.memo.forget(ctx, image)
		return err
	}
	d.memo.noteMeta(ctx, image, key, val)
	return nil
}

// metaSetLocked sets an image-meta key while this host's krbd mapping
// holds the image's exclusive lock and will not hand it over (--exclusive):
// librbd then refuses with EROFS, as changing image-meta asks for the lock.
// The key is written where librbd keeps it, the omap of the image's header
// object (rbd_header.ID, key metadata_KEY), which readers read directly.
func (d *Driver) metaSetLocked(ctx context.Context, pool, image, key string, v any) error {
	_, info, err := d.find(ctx, image)
	if err == nil && info.ID == "" {
		err = d.ceph.RunJSON(ctx, &info, "rbd", "info", spec(pool, image))
	}
	if err != nil {
		return err
	}
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if _, err := d.ceph.Run(ctx, "rados", "-p", pool, "setomapval", "rbd_header."+info.ID, "metadata_"+key, string(b)); err != nil {
		d.memo.forget(ctx, image)
		return err
	}
	d.memo.noteMeta(ctx, image, key, string(b))
	return nil
}

func (d *Driver) metaRemove(ctx context.Context, pool, image, key string) error {
	_, err := d.ceph.Run(ctx, "rbd", "image-meta", "remove", spec(pool, image), key)
	if err != nil && !errors.Is(err, syscall.ENOENT) {
		d.memo.forget(ctx, image)
		return err
	}
	d.memo.noteMeta(ctx, image, key, "")
	return nil
}

// List implements drivers.Driver.
func (d *Driver) List(ctx context.Context) ([]drivers.Volume, error) {
	pools, err := d.pools(ctx)
	if err != nil {
		return nil, err
	}
	var vols []drivers.Volume
	for _, p := range pools {
		entries, err := d.list(ctx, p)
		if err != nil {
			return nil, err
		}
		for _, e := range entries {
			if e.Snapshot != "" || drivers.ValidateName(e.Image) != nil {
				continue
			}
			v, err := d.inspect(ctx, p, imageInfo{Name: e.Image, Size: e.Size})
			if errors.Is(err, syscall.ENOENT) {
				continue // removed meanwhile
			}
			if err != nil {
				return nil, fmt.Errorf("list volumes: %w", err)
			}
			vols = append(vols, v)
		}
	}
	return vols, nil
}

// Names lists the images of every pool, each a volume, also one made with
// plain `rbd create` and no rexray metadata: one listing per pool, no
// image opened.
func (d *Driver) Names(ctx context.Context) ([]string, error) {
	pools, err := d.pools(ctx)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, p := range pools {
		entries, err := d.list(ctx, p)
		if err != nil {
			return nil, err
		}
		for _, e := range entries {
			if e.Snapshot == "" && drivers.ValidateName(e.Image) == nil {
				names = append(names, e.Image)
			}
		}
	}
	return names, nil
}

// Inspect implements drivers.Driver.
func (d *Driver) Inspect(ctx context.Context, name string) (drivers.Volume, error) {
	if err := drivers.ValidateName(name); err != nil {
		return drivers.Volume{}, err
	}
	pool, info, err := d.find(ctx, name)
	if err != nil {
		return drivers.Volume{}, fmt.Errorf("inspect volume %s: %w", name, err)
	}
	v, err := d.inspect(ctx, pool, info)
	if err != nil {
		return v, fmt.Errorf("inspect volume %s: %w", name, err)
	}
	return v, nil
}

func (d *Driver) inspect(ctx context.Context, pool string, info imageInfo) (drivers.Volume, error) {
	all, err := d.knownMeta(ctx, pool, info.Name)
	if err != nil {
		return drivers.Volume{}, err
	}
	v := drivers.Volume{Name: info.Name, Size: info.Size}
	m, err := volumeMeta(pool, info, all)
	if err != nil {
		return v, err
	}
	v.Meta = m
	for k := range all {
		if s, ok := strings.CutPrefix(k, snapKeyPfx); ok {
			v.Snapshots = append(v.Snapshots, s)
		}
	}
	slices.Sort(v.Snapshots)
	v.Fields = map[string]string{
		"pool":         pool,
		"image":        spec(pool, info.Name),
		"attachMethod": d.att.Method(),
	}
	if owner := all[ownerKey]; owner != "" {
		v.Fields["attachedTo"] = owner
	}
	dev, err := d.att.Device(ctx, pool, info.Name)
	if err != nil {
		return v, err
	}
	v.Device = dev
	return v, nil
}

// knownMeta is the image-meta of pool/image as this call read it, else
// read now.
func (d *Driver) knownMeta(ctx context.Context, pool, image string) (map[string]string, error) {
	if e, ok := d.memo.get(ctx, image); ok && e.pool == pool && e.meta != nil {
		return e.meta, nil
	}
	all, err := d.metaList(ctx, pool, image)
	if err == nil {
		d.memo.update(ctx, image, func(e *memoEntry) {
			if e.pool == pool {
				e.meta = maps.Clone(all)
			}
		})
	}
	return all, err
}

// volumeMeta is the volume's record in its image-meta all. An image made
// outside rexray has none: a volume whose filesystem the first mount
// finds out, made when its image was (info.Created, if read).
func volumeMeta(pool string, info imageInfo, all map[string]string) (drivers.Meta, error) {
	var m drivers.Meta
	if raw, ok := all[volumeKey]; ok {
		if err := json.Unmarshal([]byte(raw), &m); err != nil {
			return m, fmt.Errorf("image %s: metadata %s: %w", spec(pool, info.Name), volumeKey, err)
		}
	} else if t, err := time.Parse(imageFormat, info.Created); err == nil {
		m.CreatedAt = t.UTC()
	}
	return m, nil
}

// Create implements drivers.Driver. An image is created, then its
// metadata set; a failure in between removes the image, so no half-made
// volume is left.
func (d *Driver) Create(ctx context.Context, name string, opts drivers.CreateOptions) (drivers.Volume, error) {
	if err := drivers.ValidateName(name); err != nil {
		return drivers.Volume{}, err
	}
	pool := opts.Pool
	if pool == "" {
		pool = d.cfg.DefaultPool
	}
	fail := func(err error) (drivers.Volume, error) {
		return drivers.Volume{}, fmt.Errorf("create volume %s: %w", name, err)
	}
	switch found, _, err := d.find(ctx, name); {
	case err == nil:
		d.awaitOthers(ctx, found, name)
		return fail(drivers.ErrExists)
	case !errors.Is(err, drivers.ErrNotFound):
		return fail(err)
	}
	m := drivers.NewMeta(opts)
	var (
		err     error
		srcSize int64 // a copy's size, its source's
	)
	switch {
	case opts.FromVolume != "" && opts.FromSnapshot != "":
		return fail(errors.New("a volume is a copy of a volume or of a snapshot, not both"))
	case opts.FromVolume != "":
		srcSize, err = d.copyVolume(ctx, opts.FromVolume, pool, name)
	case opts.FromSnapshot != "":
		srcSize, err = d.copySnapshot(ctx, opts.FromSnapshot, pool, name)
	default:
		if opts.Size <= 0 {
			return fail(errors.New("size must be positive"))
		}
		// layering and exclusive-lock only: what krbd of older kernels
		// maps too; exclusive-lock is the lock that preemption breaks.
		_, err = d.ceph.Run(ctx, "rbd", "create", spec(pool, name), "--size", strconv.FormatInt(opts.Size, 10)+"B",
			"--image-feature", "layering", "--image-feature", "exclusive-lock")
	}
	if errors.Is(err, syscall.EEXIST) {
		d.awaitOthers(ctx, pool, name)
		return fail(drivers.ErrExists)
	}
	if err != nil {
		return fail(err)
	}
	d.memo.forgetListings(ctx)
	// From here on the image is ours: remove it on failure, even when ctx
	// has run out.
	undo := func(err error) (drivers.Volume, error) {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		d.memo.forget(ctx, name)
		if _, rerr := d.ceph.Run(cctx, "rbd", "rm", "--no-progress", spec(pool, name)); rerr != nil {
			err = fmt.Errorf("%w; and removing the half-made image failed: %v (remove it with rbd rm %s)", err, rerr, spec(pool, name))
		}
		return fail(err)
	}
	// A plain image has the size asked for; a copy's is its source's.
	copied := opts.FromVolume != "" || opts.FromSnapshot != ""
	info := imageInfo{Name: name, Size: opts.Size}
	if copied {
		info.Size = srcSize
	}
	if opts.Size > 0 && opts.Size < info.Size {
		return undo(fmt.Errorf("size %d bytes is smaller than its source (%d bytes): a copy cannot shrink", opts.Size, info.Size))
	}
	if opts.Size > info.Size {
		if _, err := d.ceph.Run(ctx, "rbd", "resize", "--no-progress", spec(pool, name), "--size", strconv.FormatInt(opts.Size, 10)+"B"); err != nil {
			return undo(err)
		}
		info.Size = opts.Size
	}
	d.memo.update(ctx, name, func(e *memoEntry) {
		e.pool, e.info = pool, info
		if !copied {
			e.meta = map[string]string{} // a new image has none; a copy's is what dropInherited left
		}
	})
	if err := d.metaSet(ctx, pool, name, volumeKey, m); err != nil {
		return undo(err)
	}
	d.pooled.know(pool)
	return drivers.Volume{
		Name: name, Size: info.Size, Meta: m,
		Fields: map[string]string{"pool": pool, "image": spec(pool, name), "attachMethod": d.att.Method()},
	}, nil
}

// othersCreateWait bounds how long a create waits for another host's
// create of the same name to set the image's metadata: well inside the
// 30 s dockerd gives a call. An image without metadata older than
// creatingGrace was made outside rexray, and is not waited for.
const (
	othersCreateWait = 10 * time.Second
	othersCreatePoll = 100 * time.Millisecond
	creatingGrace    = 2 * time.Minute
)

// awaitOthers waits, within ctx and othersCreateWait, while the image
// pool/name was made moments ago and has no rexray metadata yet: another
// host's create in progress, which sets it right after making the image.
// The caller, told the volume exists, then compares what it asked for with
// what that create made, options and all.
func (d *Driver) awaitOthers(ctx context.Context, pool, name string) {
	ctx, cancel := context.WithTimeout(ctx, othersCreateWait)
	defer cancel()
	for {
		var info imageInfo
		if err := d.ceph.RunJSON(ctx, &info, "rbd", "info", spec(pool, name)); err != nil {
			return
		}
		made, err := time.Parse(imageFormat, info.Created)
		if err != nil || time.Since(made) > creatingGrace {
			return
		}
		if m, err := d.metaGet(ctx, pool, name, volumeKey); err != nil || m != "" {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(othersCreatePoll):
		}
	}
}

// Remove implements drivers.Driver. A volume in use anywhere (its image has
// watchers) is refused. A volume's snapshots outlive it; as RBD snapshots
// live inside their image, the image of a volume with snapshots is kept
// under a name no volume has (removedImage) until the last goes.
func (d *Driver) Remove(ctx context.Context, name string) error {
	if err := drivers.ValidateName(name); err != nil {
		return err
	}
	v, err := d.Inspect(ctx, name)
	if err != nil {
		return fmt.Errorf("remove volume %s: %w", name, err)
	}
	pool := v.Fields["pool"]
	if v.Device != "" {
		return fmt.Errorf("remove volume %s: still attached to this host as %s", name, v.Device)
	}
	if w, err := d.watchers(ctx, pool, name); err != nil {
		return fmt.Errorf("remove volume %s: %w", name, err)
	} else if len(w) > 0 {
		return fmt.Errorf("remove volume %s: in use by %s (Ceph clients %s); unmount it there first", name, ownerName(v.Fields["attachedTo"]), strings.Join(w, ", "))
	}
	d.memo.forget(ctx, name)
	d.memo.forgetListings(ctx)
	if len(v.Snapshots) > 0 {
		_, err = d.ceph.Run(ctx, "rbd", "rename", spec(pool, name), spec(pool, removedImage(name)))
	} else {
		_, err = d.ceph.Run(ctx, "rbd", "rm", "--no-progress", spec(pool, name))
	}
	if errors.Is(err, syscall.ENOENT) {
		return fmt.Errorf("remove volume %s: %w", name, drivers.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("remove volume %s: %w", name, err)
	}
	return nil
}

func ownerName(instance string) string {
	if instance == "" {
		return "a Ceph client outside rexray"
	}
	return "instance " + instance
}

// watchers are the addresses of the clients that have the image open.
func (d *Driver) watchers(ctx context.Context, pool, image string) ([]string, error) {
	var st struct {
		Watchers []struct {
			Address string `json:"address"`
		} `json:"watchers"`
	}
	if err := d.ceph.RunJSON(ctx, &st, "rbd", "status", spec(pool, image)); err != nil {
		return nil, err
	}
	var addrs []string
	for _, w := range st.Watchers {
		addrs = append(addrs, w.Address)
	}
	return addrs, nil
}

// RecordFormat implements drivers.FormatRecorder, in the image's metadata.
func (d *Driver) RecordFormat(ctx context.Context, name string, at time.Time) error {
	pool, all, err := d.locate(ctx, name)
	var m drivers.Meta
	info := imageInfo{Name: name}
	if _, ok := all[volumeKey]; err == nil && !ok {
		_, info, err = d.find(ctx, name) // made outside rexray: when
	}
	if err == nil {
		m, err = volumeMeta(pool, info, all)
	}
	switch {
	case err != nil:
	case d.att.Method() == "krbd":
		// Mounted here: krbd's mapping holds the lock.
		err = d.metaSetLocked(ctx, pool, name, volumeKey, m.FormatRecord(at))
	default:
		err = d.metaSet(ctx, pool, name, volumeKey, m.FormatRecord(at))
		if errors.Is(err, syscall.EROFS) {
			err = d.metaSetLocked(ctx, pool, name, volumeKey, m.FormatRecord(at))
		}
	}
	if err != nil {
		return fmt.Errorf("record the filesystem of volume %s: %w", name, err)
	}
	return nil
}

// Blank tells whether the image holds no data at all: rbd diff lists the
// extents ever written, and an image no one wrote to has none. It is what
// tells an image made with `rbd create`, which its first mount formats,
// from one with data whose filesystem cannot be recognised.
func (d *Driver) Blank(ctx context.Context, name string) (bool, error) {
	pool, _, err := d.locate(ctx, name)
	if err != nil {
		return false, fmt.Errorf("volume %s: %w", name, err)
	}
	var extents []json.RawMessage
	if err := d.ceph.RunJSON(ctx, &extents, "rbd", "diff", spec(pool, name)); err != nil {
		return false, fmt.Errorf("volume %s: %w", name, err)
	}
	return len(extents) == 0, nil
}
