// Package loopback is the embedded default driver: a volume is a sparse
// image file in a store directory, attached to the host as a loop device.
//
// Store layout:
//
//	<store>/volumes/<name>.img   the volume's blocks (sparse)
//	<store>/volumes/<name>.json  its metadata; a volume exists once this does
package loopback

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/kelseyhightower/envconfig"
	"golang.org/x/sys/unix"

	"github.com/rexray/rexray/drivers"
)

// Name is the driver's registry name.
const Name = "loopback"

// Config is read from LOOPBACK_* environment variables.
type Config struct {
	// VolumePath is the store directory. It may be shared between hosts.
	VolumePath string `envconfig:"VOLUMEPATH" default:"/var/lib/rexray/loopback"`
	// DirectIO makes the loop device bypass the page cache, so a volume's
	// pages are not cached twice (once for the fs inside, once for the file).
	DirectIO bool `envconfig:"DIRECTIO" default:"true"`
}

// Driver implements drivers.Driver over a store directory.
type Driver struct {
	cfg Config
	dir string // <store>/volumes
}

// FromEnv builds the driver from LOOPBACK_* variables.
func FromEnv(ctx context.Context) (drivers.Driver, error) {
	var cfg Config
	if err := envconfig.Process("loopback", &cfg); err != nil {
		return nil, fmt.Errorf("loopback settings: %w", err)
	}
	return New(cfg)
}

// New prepares the store directory.
func New(cfg Config) (*Driver, error) {
	if !filepath.IsAbs(cfg.VolumePath) {
		return nil, fmt.Errorf("loopback store LOOPBACK_VOLUMEPATH=%q: must be an absolute path", cfg.VolumePath)
	}
	d := &Driver{cfg: cfg, dir: filepath.Join(cfg.VolumePath, "volumes")}
	// 0700: volume images hold users' data.
	if err := os.MkdirAll(d.dir, 0o700); err != nil {
		return nil, fmt.Errorf("loopback store: %w", err)
	}
	return d, nil
}

// Name implements drivers.Driver.
func (d *Driver) Name() string { return Name }

// InstanceID implements drivers.Driver: the host name identifies this host.
func (d *Driver) InstanceID(ctx context.Context) (string, error) { return os.Hostname() }

func (d *Driver) imagePath(name string) string { return filepath.Join(d.dir, name+".img") }
func (d *Driver) metaPath(name string) string  { return filepath.Join(d.dir, name+".json") }

// metaTemp is where metadata is written before its rename into place. Its
// name is fixed, not random, so that what a crash leaves is found again by
// the next Create or Remove of the volume.
func (d *Driver) metaTemp(name string) string { return filepath.Join(d.dir, "."+name+".json.tmp") }

// List implements drivers.Driver.
func (d *Driver) List(ctx context.Context) ([]drivers.Volume, error) {
	entries, err := os.ReadDir(d.dir)
	if err != nil {
		return nil, fmt.Errorf("list volumes: %w", err)
	}
	bound, err := boundLoops()
	if err != nil {
		return nil, fmt.Errorf("list volumes: %w", err)
	}
	vols := make([]drivers.Volume, 0, len(entries))
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), ".json")
		if !ok || drivers.ValidateName(name) != nil {
			continue
		}
		v, err := d.inspect(name, bound)
		if errors.Is(err, drivers.ErrNotFound) {
			continue // removed meanwhile
		}
		if err != nil {
			return nil, fmt.Errorf("list volumes: %w", err)
		}
		vols = append(vols, v)
	}
	return vols, nil
}

// Inspect implements drivers.Driver.
func (d *Driver) Inspect(ctx context.Context, name string) (drivers.Volume, error) {
	if err := drivers.ValidateName(name); err != nil {
		return drivers.Volume{}, err
	}
	bound, err := boundLoops()
	if err != nil {
		return drivers.Volume{}, fmt.Errorf("inspect volume %s: %w", name, err)
	}
	return d.inspect(name, bound)
}

func (d *Driver) inspect(name string, bound map[fileID]string) (drivers.Volume, error) {
	v, err := d.readMeta(name)
	if err != nil {
		return v, err
	}
	v.Fields = map[string]string{"image": d.imagePath(name)}
	if id, err := idOf(d.imagePath(name)); err == nil {
		v.Device = bound[id]
	}
	return v, nil
}

func (d *Driver) readMeta(name string) (drivers.Volume, error) {
	var v drivers.Volume
	b, err := os.ReadFile(d.metaPath(name))
	if errors.Is(err, os.ErrNotExist) {
		return v, drivers.ErrNotFound
	}
	if err != nil {
		return v, fmt.Errorf("volume %s: read metadata: %w", name, err)
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return v, fmt.Errorf("volume %s: metadata %s is corrupt: %w", name, d.metaPath(name), err)
	}
	if v.Name != name {
		return v, fmt.Errorf("volume %s: metadata %s names volume %q", name, d.metaPath(name), v.Name)
	}
	return v, nil
}

// Create implements drivers.Driver. The image is claimed with O_EXCL and the
// metadata written last, atomically, so a crash part way leaves no listed
// volume, and the leftover image is reclaimed by the next Create.
func (d *Driver) Create(ctx context.Context, name string, opts drivers.CreateOptions) (drivers.Volume, error) {
	if err := drivers.ValidateName(name); err != nil {
		return drivers.Volume{}, err
	}
	v := drivers.Volume{
		Name:             name,
		Size:             opts.Size,
		FSType:           opts.FSType,
		Type:             opts.Type,
		IOPS:             opts.IOPS,
		AvailabilityZone: opts.AvailabilityZone,
		CreatedAt:        time.Now().UTC().Truncate(time.Second),
		Origin:           opts.FromVolume,
	}
	var src *drivers.Volume
	if opts.FromVolume != "" {
		s, err := d.readMeta(opts.FromVolume)
		if err != nil {
			return drivers.Volume{}, fmt.Errorf("create volume %s: source volume %s: %w", name, opts.FromVolume, err)
		}
		src = &s
		if v.Size == 0 {
			v.Size = s.Size
		}
		if v.Size < s.Size {
			return drivers.Volume{}, fmt.Errorf("create volume %s: size %d bytes is smaller than its source %s (%d bytes): a copy cannot shrink", name, v.Size, s.Name, s.Size)
		}
	}
	if v.Size <= 0 {
		return drivers.Volume{}, fmt.Errorf("create volume %s: size must be positive", name)
	}
	if err := d.fillImage(ctx, name, v.Size, src); err != nil {
		return drivers.Volume{}, fmt.Errorf("create volume %s: %w", name, err)
	}
	if err := d.writeMeta(v); err != nil {
		os.Remove(d.imagePath(name))
		return drivers.Volume{}, fmt.Errorf("create volume %s: %w", name, err)
	}
	v.Fields = map[string]string{"image": d.imagePath(name)}
	return v, nil
}

// fillImage claims the volume's image and makes it size bytes: a hole, or
// src's blocks followed by a hole. On failure no image is left.
func (d *Driver) fillImage(ctx context.Context, name string, size int64, src *drivers.Volume) error {
	f, err := d.claimImage(name)
	if err != nil {
		return err
	}
	if src != nil {
		err = d.copyFrom(ctx, f, src.Name)
	}
	if err == nil {
		err = f.Truncate(size)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(d.imagePath(name))
		if errors.Is(err, unix.EFBIG) {
			return fmt.Errorf("size %d bytes is more than the store's filesystem allows in one file: %w", size, err)
		}
		return err
	}
	return nil
}

func (d *Driver) copyFrom(ctx context.Context, dst *os.File, source string) error {
	src, err := os.Open(d.imagePath(source))
	if err != nil {
		return fmt.Errorf("copy of %s: %w", source, err)
	}
	defer src.Close()
	if err := copyImage(ctx, dst, src); err != nil {
		return fmt.Errorf("copy of %s: %w", source, err)
	}
	return nil
}

// claimImage creates the volume's image, empty. An image without metadata
// is what a crashed Create leaves: it is taken over.
func (d *Driver) claimImage(name string) (*os.File, error) {
	img := d.imagePath(name)
	f, err := os.OpenFile(img, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) {
		if _, merr := os.Stat(d.metaPath(name)); merr == nil {
			return nil, drivers.ErrExists
		}
		if err := os.Remove(img); err != nil {
			return nil, err
		}
		f, err = os.OpenFile(img, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	}
	return f, err
}

func (d *Driver) writeMeta(v drivers.Volume) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.OpenFile(d.metaTemp(v.Name), os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("write metadata: %w", err)
	}
	_, err = tmp.Write(b)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), d.metaPath(v.Name))
	}
	if err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("write metadata: %w", err)
	}
	return nil
}

// Remove implements drivers.Driver. An attached volume is refused: its
// device may be mounted on this host. What a crashed Create or Remove left
// of the volume is removed too.
func (d *Driver) Remove(ctx context.Context, name string) error {
	if err := drivers.ValidateName(name); err != nil {
		return err
	}
	bound, err := boundLoops()
	if err != nil {
		return fmt.Errorf("remove volume %s: %w", name, err)
	}
	if id, err := idOf(d.imagePath(name)); err == nil && bound[id] != "" {
		return fmt.Errorf("remove volume %s: still attached as %s", name, bound[id])
	}
	// Metadata first: from then on the volume is gone for List, and a
	// crash leaves only files that the next Create or Remove reclaims.
	found := false
	for _, p := range []string{d.metaPath(name), d.metaTemp(name), d.imagePath(name)} {
		err := os.Remove(p)
		switch {
		case err == nil:
			found = true
		case !errors.Is(err, os.ErrNotExist):
			return fmt.Errorf("remove volume %s: %w", name, err)
		}
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
	f, err := os.Open(d.imagePath(name))
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

// Attach implements drivers.Driver.
func (d *Driver) Attach(ctx context.Context, name string, force bool) (string, error) {
	v, err := d.Inspect(ctx, name)
	if err != nil {
		return "", fmt.Errorf("attach volume %s: %w", name, err)
	}
	if v.Device != "" {
		return v.Device, nil
	}
	dev, err := attachLoop(d.imagePath(name), d.cfg.DirectIO)
	if err != nil {
		return "", fmt.Errorf("attach volume %s: %w", name, err)
	}
	return dev, nil
}

// Detach implements drivers.Driver.
func (d *Driver) Detach(ctx context.Context, name string) error {
	v, err := d.Inspect(ctx, name)
	if err != nil {
		return fmt.Errorf("detach volume %s: %w", name, err)
	}
	if v.Device == "" {
		return nil
	}
	if err := detachLoop(v.Device); err != nil {
		return fmt.Errorf("detach volume %s: %w", name, err)
	}
	return nil
}
