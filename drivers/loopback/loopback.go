// Package loopback is the embedded default driver: a volume is a sparse
// image file in a store directory, attached to the host as a loop device.
//
// Store layout:
//
//	<store>/volumes/<name>.img     the volume's blocks (sparse)
//	<store>/volumes/<name>.json    its metadata; a volume exists once this does
//	<store>/snapshots/<name>.img   a snapshot's blocks, an independent copy
//	<store>/snapshots/<name>.json  its metadata, naming the volume it was taken of
package loopback

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kelseyhightower/envconfig"
	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"github.com/rexray/rexray/config"
	"github.com/rexray/rexray/drivers"
	"github.com/rexray/rexray/drivers/loopback/imagecopy"
	"github.com/rexray/rexray/drivers/loopback/storefs"
	"github.com/rexray/rexray/drivers/loopdev"
	"github.com/rexray/rexray/mount"
)

// Name is the driver's registry name.
const Name = "loopback"

// DefaultStore is the store of the service named "loopback".
const DefaultStore = "/var/lib/rexray/loopback"

// Config is read from <SERVICE>_* environment variables: LOOPBACK_* for the
// default service.
type Config struct {
	// VolumePath is the store directory. It may be shared between hosts.
	// Unset, it is DefaultStore for the service "loopback", and a folder
	// named after the service in LOOPBACK_VOLUMEPATH (or DefaultStore) for
	// another service, so that a managed plugin's "store" mount holds all.
	VolumePath string `envconfig:"VOLUMEPATH"`
	// DirectIO makes the loop device bypass the page cache, so a volume's
	// pages are not cached twice (once for the fs inside, once for the file).
	DirectIO bool `envconfig:"DIRECTIO" default:"true"`
	// LeaseTTL is how long a host's hold on an attached volume lasts
	// unless renewed; the holder renews it every LeaseTTL/5. Another host
	// takes over a volume whose lease ran out (its holder died).
	LeaseTTL time.Duration `envconfig:"LEASETTL" default:"15s"`
	// Overcommit lets a create promise more than the store's free space:
	// images are sparse and take room as they are written, so the store
	// can hold more volumes than it could fill. Such a create is logged as
	// a warning; false (a Config built in code) refuses it.
	Overcommit bool `envconfig:"OVERCOMMIT" default:"true"`
	// Instance identifies this host in the store's leases
	// (drivers.Settings.InstanceID).
	Instance string `ignored:"true"`
	// Service names the settings' prefix in messages (LOOPBACK for
	// LOOPBACK_OVERCOMMIT).
	Service string `ignored:"true"`
	// Log is where a warning goes outside a call's logger.
	Log logrus.FieldLogger `ignored:"true"`
}

// Driver implements drivers.Driver over a store directory.
type Driver struct {
	cfg      Config
	leaseMu  sync.Mutex       // orders this host's lease changes
	settings []config.Setting // as read from the environment
	tag      string           // of this instance's loop devices
	held     *heldSet         // volumes this instance holds a lease on
	listing  *nameCache       // of the volumes folder, for Names
	dir      string           // <store>/volumes
	vols     records
	snaps    records
	// renewals and renewFailures count the Watcher's lease renewals.
	renewals, renewFailures atomic.Uint64
}

// LeaseCounts implements drivers.LeaseCounter.
func (d *Driver) LeaseCounts() drivers.LeaseCounts {
	return drivers.LeaseCounts{Renewals: d.renewals.Load(), Failures: d.renewFailures.Load()}
}

// FromEnv builds a service's driver from its <SERVICE>_* variables.
func FromEnv(ctx context.Context, s drivers.Settings) (drivers.Driver, error) {
	var cfg Config
	if err := envconfig.Process(s.Service, &cfg); err != nil {
		return nil, fmt.Errorf("loopback settings: %w", err)
	}
	if cfg.VolumePath == "" {
		cfg.VolumePath = defaultStore(s.Service)
	}
	cfg.Instance, cfg.Service, cfg.Log = s.InstanceID, s.Service, s.Log
	d, err := New(cfg)
	if err != nil {
		return nil, err
	}
	d.settings = config.Describe(s.Service, cfg)
	return d, nil
}

// Settings implements drivers.Configured.
func (d *Driver) Settings() []config.Setting { return d.settings }

func defaultStore(service string) string {
	if service == Name {
		return DefaultStore
	}
	root := os.Getenv("LOOPBACK_VOLUMEPATH")
	if root == "" {
		root = DefaultStore
	}
	return filepath.Join(root, service)
}

// New prepares the store directory.
func New(cfg Config) (*Driver, error) {
	if !filepath.IsAbs(cfg.VolumePath) {
		return nil, fmt.Errorf("loopback store (VOLUMEPATH) %q: must be an absolute path", cfg.VolumePath)
	}
	if cfg.LeaseTTL == 0 {
		cfg.LeaseTTL = 15 * time.Second
	}
	if cfg.LeaseTTL < time.Second {
		return nil, fmt.Errorf("lease TTL (LEASETTL) %s: must be at least 1s", cfg.LeaseTTL)
	}
	if cfg.Service == "" {
		cfg.Service = Name
	}
	if cfg.Log == nil {
		cfg.Log = logrus.StandardLogger()
	}
	if cfg.Instance == "" {
		return nil, drivers.Invalid("loopback store %s: no instance ID to name this host in its leases", cfg.VolumePath)
	}
	dir := filepath.Join(cfg.VolumePath, "volumes")
	d := &Driver{
		cfg:     cfg,
		tag:     loopdev.Tag(cfg.Instance),
		held:    newHeldSet(),
		listing: &nameCache{},
		dir:     dir,
		vols:    records{cfg.VolumePath, dir, cfg.Instance},
		snaps:   records{cfg.VolumePath, filepath.Join(cfg.VolumePath, "snapshots"), cfg.Instance},
	}
	// 0700: images hold users' data.
	for _, dir := range []string{d.vols.dir, d.snaps.dir} {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("loopback store: %w", err)
		}
		fd, err := storefs.OpenDirIn(cfg.VolumePath, dir)
		if err != nil {
			return nil, fmt.Errorf("loopback store: %w", err)
		}
		unix.Close(fd)
	}
	if err := checkStore(cfg.VolumePath, cfg.LeaseTTL, cfg.Log); err != nil {
		return nil, err
	}
	d.vols.sweepTemps()
	d.snaps.sweepTemps()
	return d, nil
}

// Name implements drivers.Driver.
func (d *Driver) Name() string { return Name }

func (d *Driver) imagePath(name string) string { return d.vols.image(name) }
func (d *Driver) metaPath(name string) string  { return d.vols.meta(name) }
func (d *Driver) metaTemp(name string) string  { return d.vols.temp(name) }

// List implements drivers.Driver.
func (d *Driver) List(ctx context.Context) ([]drivers.Volume, error) {
	names, err := d.vols.names()
	if err != nil {
		return nil, fmt.Errorf("list volumes: %w", err)
	}
	bound, err := loopdev.Bound(d.tag)
	if err != nil {
		return nil, fmt.Errorf("list volumes: %w", err)
	}
	snaps, err := d.snapshotsByVolume()
	if err != nil {
		return nil, fmt.Errorf("list volumes: %w", err)
	}
	vols := make([]drivers.Volume, 0, len(names))
	for _, name := range names {
		v, err := d.inspect(name, bound, snaps)
		var untrusted *storefs.UntrustedError
		if errors.Is(err, drivers.ErrNotFound) || errors.As(err, &untrusted) {
			// Removed meanwhile, or not a volume of the store: Inspect
			// names the file that is not.
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("list volumes: %w", err)
		}
		vols = append(vols, v)
	}
	return vols, nil
}

// Names lists the volumes from the store's folder alone, reading no
// record, and only when the folder changed (see nameCache).
func (d *Driver) Names(ctx context.Context) ([]string, error) {
	names, err := d.listing.list(d.vols)
	if err != nil {
		return nil, fmt.Errorf("list volumes: %w", err)
	}
	return names, nil
}

// Inspect implements drivers.Driver.
func (d *Driver) Inspect(ctx context.Context, name string) (drivers.Volume, error) {
	if err := drivers.ValidateName(name); err != nil {
		return drivers.Volume{}, err
	}
	bound, err := loopdev.Bound(d.tag)
	if err != nil {
		return drivers.Volume{}, fmt.Errorf("inspect volume %s: %w", name, err)
	}
	snaps, err := d.snapshotsByVolume()
	if err != nil {
		return drivers.Volume{}, fmt.Errorf("inspect volume %s: %w", name, err)
	}
	return d.inspect(name, bound, snaps)
}

func (d *Driver) inspect(name string, bound map[loopdev.FileID]string, snaps map[string][]string) (drivers.Volume, error) {
	v, err := d.readMeta(name)
	if err != nil {
		return v, err
	}
	v.Snapshots = snaps[name]
	v.Fields = map[string]string{"image": d.imagePath(name)}
	// A lease that ran out tells nothing: its host is gone or will find
	// it lost.
	if l, ok, err := d.readLease(name); err == nil && ok && time.Now().Before(l.Expires) {
		v.Fields["attachedTo"] = l.Holder
	}
	id, err := d.imageID(name)
	var untrusted *storefs.UntrustedError
	switch {
	case errors.As(err, &untrusted):
		return drivers.Volume{}, fmt.Errorf("volume %s: %w", name, err)
	case err == nil:
		v.Device = bound[id]
	}
	return v, nil
}

// imageID is the FileID of name's image, a regular file of the store.
func (d *Driver) imageID(name string) (loopdev.FileID, error) {
	return storefs.IDIn(d.cfg.VolumePath, d.imagePath(name))
}

func (d *Driver) readMeta(name string) (drivers.Volume, error) {
	var v drivers.Volume
	if err := d.vols.read(name, &v, drivers.ErrNotFound); err != nil {
		if errors.Is(err, drivers.ErrNotFound) {
			return v, err
		}
		return v, fmt.Errorf("volume %w", err)
	}
	if v.Name != name {
		return v, fmt.Errorf("volume %s: metadata %s names volume %q", name, d.metaPath(name), v.Name)
	}
	return v, nil
}

// Create implements drivers.Driver. The image is linked into place and the
// metadata written last, atomically, so a crash part way leaves no listed
// volume, and the leftover image is reclaimed by the next Create.
func (d *Driver) Create(ctx context.Context, name string, opts drivers.CreateOptions) (drivers.Volume, error) {
	if err := drivers.ValidateName(name); err != nil {
		return drivers.Volume{}, err
	}
	if opts.Pool != "" {
		return drivers.Volume{}, fmt.Errorf("create volume %s: the loopback driver has no pools; drop pool=%s", name, opts.Pool)
	}
	if err := d.vols.check(name); err != nil {
		return drivers.Volume{}, fmt.Errorf("create volume %s: %w", name, err)
	}
	v := drivers.Volume{Name: name, Size: opts.Size, Meta: drivers.NewMeta(opts)}
	src, err := d.source(opts)
	if err != nil {
		return drivers.Volume{}, fmt.Errorf("create volume %s: %w", name, err)
	}
	if src.image != "" {
		if v.Size == 0 {
			v.Size = src.size
		}
		if v.Size < src.size {
			return drivers.Volume{}, fmt.Errorf("create volume %s: size %d bytes is smaller than its source %s (%d bytes): a copy cannot shrink", name, v.Size, src.name, src.size)
		}
	}
	if v.Size <= 0 {
		return drivers.Volume{}, fmt.Errorf("create volume %s: size must be positive", name)
	}
	if err := d.checkRoom(ctx, name, v.Size); err != nil {
		return drivers.Volume{}, fmt.Errorf("create volume %s: %w", name, err)
	}
	if err := d.fill(ctx, d.vols, name, v.Size, src.image, drivers.ErrExists, func() error { return d.vols.write(name, v) }); err != nil {
		return drivers.Volume{}, fmt.Errorf("create volume %s: %w", name, err)
	}
	v.Fields = map[string]string{"image": d.imagePath(name)}
	return v, nil
}

// origin is what a new volume copies, if anything.
type origin struct {
	name  string // "volume v1" or "snapshot s1"
	image string
	size  int64
}

func (d *Driver) source(opts drivers.CreateOptions) (origin, error) {
	switch {
	case opts.FromVolume != "" && opts.FromSnapshot != "":
		return origin{}, errors.New("a volume is a copy of a volume or of a snapshot, not both")
	case opts.FromVolume != "":
		s, err := d.readMeta(opts.FromVolume)
		if err != nil {
			return origin{}, fmt.Errorf("source volume %s: %w", opts.FromVolume, err)
		}
		return origin{"volume " + s.Name, d.imagePath(s.Name), s.Size}, nil
	case opts.FromSnapshot != "":
		s, err := d.readSnapshot(opts.FromSnapshot)
		if err != nil {
			return origin{}, fmt.Errorf("source snapshot %s: %w", opts.FromSnapshot, err)
		}
		return origin{"snapshot " + s.Name, d.snaps.image(s.Name), s.Size}, nil
	}
	return origin{}, nil
}

// fill claims name's image in r, makes it size bytes (a hole, or the
// blocks of the image src followed by a hole) and commits its metadata.
// On failure no image is left.
func (d *Driver) fill(ctx context.Context, r records, name string, size int64, src string, taken error, commit func() error) error {
	err := r.claim(ctx, name, taken, func(f *os.File) error {
		if src != "" {
			if err := d.copyFile(ctx, f, src); err != nil {
				return err
			}
		}
		return f.Truncate(size)
	}, commit)
	if errors.Is(err, unix.EFBIG) {
		return fmt.Errorf("size %d bytes is more than the store's filesystem allows in one file: %w", size, err)
	}
	return err
}

func (d *Driver) copyFile(ctx context.Context, dst *os.File, path string) error {
	src, err := storefs.OpenIn(d.cfg.VolumePath, path, os.O_RDONLY, 0)
	if err != nil {
		return fmt.Errorf("copy of %s: %w", filepath.Base(path), err)
	}
	defer src.Close()
	if err := imagecopy.Copy(ctx, dst, src); err != nil {
		return fmt.Errorf("copy of %s: %w", filepath.Base(path), err)
	}
	return nil
}

// Remove implements drivers.Driver. An attached volume is refused: its
// device may be mounted on this host. What a crashed Create or Remove left
// of the volume is removed too. The volume's snapshots are kept: they are
// independent copies.
func (d *Driver) Remove(ctx context.Context, name string) error {
	if err := drivers.ValidateName(name); err != nil {
		return err
	}
	bound, err := loopdev.Bound(d.tag)
	if err != nil {
		return fmt.Errorf("remove volume %s: %w", name, err)
	}
	if id, err := d.imageID(name); err == nil {
		if dev := bound[id]; dev != "" && !loopdev.Settle(ctx, dev, id) {
			return fmt.Errorf("remove volume %s: still attached as %s", name, dev)
		}
	}
	if l, held, err := d.holder(name); err != nil || held {
		if err == nil {
			err = fmt.Errorf("attached to host %s", l.Holder)
		}
		return fmt.Errorf("remove volume %s: %w", name, err)
	}
	found, err := d.vols.remove(name)
	if err == nil {
		err = d.release(name)
	}
	if err == nil {
		err = removeIfExists(d.preemptPath(name))
	}
	if err == nil {
		err = d.removeTemps(name)
	}
	if err != nil {
		return fmt.Errorf("remove volume %s: %w", name, err)
	}
	if !found {
		return fmt.Errorf("remove volume %s: %w", name, drivers.ErrNotFound)
	}
	return nil
}

// Blank tells whether the volume's image holds no data at all. A new image
// is a hole from end to end and reads as zeros; once anything is written,
// even one block, it is not blank. Filesystems without SEEK_DATA report
// data everywhere, which is the safe answer.
func (d *Driver) Blank(ctx context.Context, name string) (bool, error) {
	if err := drivers.ValidateName(name); err != nil {
		return false, err
	}
	// The record first: an image without one is no volume (a crashed
	// Create's), and a missing volume is ErrNotFound.
	if _, err := d.readMeta(name); err != nil {
		return false, err
	}
	f, err := storefs.OpenIn(d.cfg.VolumePath, d.imagePath(name), os.O_RDONLY, 0)
	if err != nil {
		return false, fmt.Errorf("volume %s: %w", name, err)
	}
	defer f.Close()
	_, err = unix.Seek(int(f.Fd()), 0, unix.SEEK_DATA)
	if errors.Is(err, unix.ENXIO) {
		return true, nil
	}
	return false, nil
}

// Attach implements drivers.Driver. The volume's lease comes first: a
// volume another live host holds is refused, or taken with force.
func (d *Driver) Attach(ctx context.Context, name string, force bool) (string, error) {
	if err := drivers.ValidateName(name); err != nil {
		return "", err
	}
	if _, err := d.readMeta(name); err != nil {
		return "", fmt.Errorf("attach volume %s: %w", name, err)
	}
	bound, _, err := d.attached(name)
	if err != nil {
		return "", fmt.Errorf("attach volume %s: %w", name, err)
	}
	if err := d.acquire(ctx, name, force); err != nil {
		return "", fmt.Errorf("attach volume %s: %w", name, err)
	}
	if bound != "" {
		return bound, nil
	}
	dev, err := d.bind(name)
	if err != nil {
		d.release(name)
		return "", fmt.Errorf("attach volume %s: %w", name, err)
	}
	if log := drivers.LogFrom(ctx, nil); log != nil {
		log.Debugf("loopback: %s bound to %s", d.imagePath(name), dev)
	}
	return dev, nil
}

// bind binds name's image, a regular file of the store, to a loop device.
func (d *Driver) bind(name string) (string, error) {
	f, err := storefs.OpenIn(d.cfg.VolumePath, d.imagePath(name), os.O_RDWR, 0)
	if err != nil {
		return "", err
	}
	defer f.Close()
	return loopdev.AttachFile(f, d.tag, d.cfg.DirectIO)
}

// Detach implements drivers.Driver: the loop device goes (once nothing
// uses it), then the lease. A device this instance bound to the volume's
// image before the image was deleted from the store goes too, unless a
// filesystem on it is still mounted somewhere: no other path leads to it.
func (d *Driver) Detach(ctx context.Context, name string) error {
	if err := drivers.ValidateName(name); err != nil {
		return err
	}
	// A volume without its record is not found; what it left attached
	// (its image deleted) goes with the orphans below.
	_, missing := d.readMeta(name)
	if missing != nil && !errors.Is(missing, drivers.ErrNotFound) {
		return fmt.Errorf("detach volume %s: %w", name, missing)
	}
	var dev string
	var id loopdev.FileID
	if missing == nil {
		var err error
		if dev, id, err = d.attached(name); err != nil {
			return fmt.Errorf("detach volume %s: %w", name, err)
		}
	}
	if dev != "" {
		if err := loopdev.Detach(dev); err != nil {
			return fmt.Errorf("detach volume %s: %w", name, err)
		}
		if log := drivers.LogFrom(ctx, nil); log != nil {
			log.Debugf("loopback: %s detached", dev)
		}
		sctx, cancel := context.WithTimeout(ctx, detachSettle)
		loopdev.Settle(sctx, dev, id)
		cancel()
	}
	if _, oerr := d.detachOrphans(ctx, name); oerr != nil {
		return fmt.Errorf("detach volume %s: %w", name, oerr)
	}
	if rerr := d.release(name); rerr != nil {
		return fmt.Errorf("detach volume %s: %w", name, rerr)
	}
	if missing != nil {
		return fmt.Errorf("detach volume %s: %w", name, missing)
	}
	return nil
}

// attached is the loop device this instance bound to name's image, if
// any, with the image's FileID: all that Attach and Detach need to know of
// the device, without the snapshots and the lease Inspect reads as well
// (every docker run attaches and detaches twice). An image that is not
// there has no device; one that is not a regular file of the store is an
// error.
func (d *Driver) attached(name string) (string, loopdev.FileID, error) {
	id, err := d.imageID(name)
	var untrusted *storefs.UntrustedError
	switch {
	case errors.As(err, &untrusted):
		return "", id, fmt.Errorf("volume %s: %w", name, err)
	case err != nil:
		return "", id, nil
	}
	bound, err := loopdev.Bound(d.tag)
	if err != nil {
		return "", id, err
	}
	return bound[id], id, nil
}

// DetachOrphans implements drivers.OrphanDetacher: the loop devices this
// instance bound to images of this store that were deleted since.
func (d *Driver) DetachOrphans(ctx context.Context) ([]drivers.Orphan, error) {
	orphans, err := d.detachOrphans(ctx, "")
	if err != nil {
		return orphans, fmt.Errorf("detach devices of deleted images: %w", err)
	}
	return orphans, nil
}

// detachOrphans detaches the orphans of one volume, or of all when name
// is "". Only devices tagged as this instance's are looked at, and only
// those whose file lay in this store's volume folder (by its name and its
// filesystem): an untagged device, or another instance's, may be in use
// by someone this instance cannot see.
func (d *Driver) detachOrphans(ctx context.Context, name string) ([]drivers.Orphan, error) {
	orphans, err := loopdev.Orphans(d.tag)
	if err != nil {
		return nil, err
	}
	var found []drivers.Orphan
	var errs []error
	for _, o := range orphans {
		vol, ok := strings.CutSuffix(o.Name, ".img")
		if !ok || drivers.ValidateName(vol) != nil || (name != "" && vol != name) {
			continue
		}
		if here, err := o.File.OnFilesystemOf(d.dir); err != nil || !here {
			continue
		}
		busy, err := mount.Busy(o.Device)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		found = append(found, drivers.Orphan{Volume: vol, Device: o.Device, Mounted: busy})
		if busy {
			continue // it goes at its last unmount
		}
		if err := loopdev.Detach(o.Device); err != nil {
			errs = append(errs, err)
			continue
		}
		sctx, cancel := context.WithTimeout(ctx, detachSettle)
		loopdev.Settle(sctx, o.Device, o.File)
		cancel()
	}
	return found, errors.Join(errs...)
}

// detachSettle bounds how long Detach waits for a detach the kernel
// deferred, because another process had the device open for a moment (a
// loop scan, a probe), so that what follows sees the volume detached. A
// device still mounted somewhere (a fenced volume in a container) costs
// that short while and no more: the kernel lets it go when that mount
// ends. A status read holds a device for microseconds, a probe for
// milliseconds.
const detachSettle = 50 * time.Millisecond

func removeIfExists(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// RecordFormat implements drivers.FormatRecorder: the record goes into the
// volume's metadata, which every host sharing the store reads.
func (d *Driver) RecordFormat(ctx context.Context, name string, at time.Time) error {
	v, err := d.readMeta(name)
	if err == nil {
		v.Meta = v.Meta.FormatRecord(at)
		err = d.vols.write(name, v)
	}
	if err != nil {
		return fmt.Errorf("record the filesystem of volume %s: %w", name, err)
	}
	return nil
}

// Capacity implements drivers.Capacitor: the room left in the store's
// filesystem. Images are sparse, so a volume takes room as it is written.
func (d *Driver) Capacity(ctx context.Context) (int64, error) {
	u, err := mount.UsageOf(d.dir)
	if err != nil {
		return 0, fmt.Errorf("loopback store capacity: %w", err)
	}
	return u.FreeBytes, nil
}
