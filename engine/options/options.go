// Package options parses the options a volume is created with (Docker's
// `-o key=value`, later CSI's parameters) into the drivers' CreateOptions.
package options

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/docker/go-units"

	"github.com/rexray/rexray/config"
	"github.com/rexray/rexray/drivers"
	"github.com/rexray/rexray/mount"
)

// The create options Docker passes with -o, by lower-cased key.
const (
	optSize        = "size"
	optVolumeType  = "volumetype"
	optIOPS        = "iops"
	optAZ          = "availabilityzone"
	optNewFSType   = "newfstype"
	optFSType      = "fstype" // alias of newfstype
	optOverwriteFS = "overwritefs"
	optVolumeName  = "volumename"   // copy of that volume
	optVolumeID    = "volumeid"     // the same: a loopback volume's ID is its name
	optSnapName    = "snapshotname" // copy of that snapshot
	optSnapID      = "snapshotid"   // the same: a snapshot's ID is its name
	optService     = "service"
	optPool        = "pool" // the rbd driver's pool
	optUID         = "uid"  // the data folder's owner
	optGID         = "gid"
	optMode        = "mode" // and its mode, in octal
	optMkfsOpts    = "mkfsopts"
	optMountOpts   = "mountopts"
	optEncrypted   = "encrypted" // LUKS2 blocks, opened with dm-crypt
)

// Accepted are the option keys, as users spell them (keys are
// case-insensitive): what an unknown key's error lists.
func Accepted() []string {
	return []string{"size", "volumeType", "iops", "availabilityZone", "newfstype", "fsType", "overwritefs", "volumeName", "volumeID", "snapshotName", "snapshotID", "service", "pool", "uid", "gid", "mode", "mkfsopts", "mountopts", "encrypted"}
}

// Request is a parsed Create: the volume's properties, which of them
// the user gave (a repeated Create is compared on those only), whether to
// format over an existing filesystem at the first mount, and the service
// asked for ("" for the default).
type Request struct {
	Opts      drivers.CreateOptions
	Given     map[string]bool // by lower-cased option key
	Overwrite bool
	Service   string
}

// Defaults are the properties of a volume created without options.
type Defaults struct {
	Size             string
	FSType           string
	VolumeType       string
	IOPS             int64
	AvailabilityZone string
	Encrypted        bool
}

// DefaultsOf are the defaults the settings give.
func DefaultsOf(cfg config.Config) Defaults {
	o := cfg.Ops
	return Defaults{
		Size:             o.CreateDefaultSize,
		FSType:           cfg.DefaultFSType(),
		VolumeType:       o.CreateDefaultType,
		IOPS:             o.CreateDefaultIOPS,
		AvailabilityZone: o.CreateDefaultAvailZone,
		Encrypted:        bool(o.CreateDefaultEncrypted),
	}
}

// Implicit are the options of a volume a mount creates: the defaults.
func Implicit(cfg config.Config) drivers.CreateOptions {
	d := DefaultsOf(cfg)
	size, _ := ParseSize(d.Size) // CheckConfig refused a bad one
	return drivers.CreateOptions{Size: size, FSType: d.FSType, Type: d.VolumeType, IOPS: d.IOPS, AvailabilityZone: d.AvailabilityZone, Encrypted: d.Encrypted}
}

// GaveEncrypted tells whether the request said whether to encrypt.
func (r Request) GaveEncrypted() bool { return r.Given[optEncrypted] }

// GaveFSType tells whether the request named a filesystem.
func (r Request) GaveFSType() bool { return r.Given[optNewFSType] }

// Parse reads create options over the defaults. Its errors match
// drivers.ErrInvalid and say what is accepted.
func Parse(raw map[string]string, def Defaults) (Request, error) {
	req, err := parse(raw, def)
	if err != nil {
		return req, invalidOptions{err}
	}
	return req, nil
}

// invalidOptions is an error of Parse: its own message, matching
// drivers.ErrInvalid.
type invalidOptions struct{ err error }

func (e invalidOptions) Error() string   { return e.err.Error() }
func (e invalidOptions) Unwrap() []error { return []error{e.err, drivers.ErrInvalid} }

func parse(raw map[string]string, def Defaults) (Request, error) {
	opts, err := lowerKeys(raw)
	if err != nil {
		return Request{}, err
	}
	req := Request{Given: map[string]bool{}}
	size := def.Size
	var mkfsOpts, mountOpts string
	req.Opts = drivers.CreateOptions{FSType: def.FSType, Type: def.VolumeType, IOPS: def.IOPS, AvailabilityZone: def.AvailabilityZone, Encrypted: def.Encrypted}
	// In a fixed order, so that the same options always get the same error.
	for _, k := range slices.Sorted(maps.Keys(opts)) {
		v := opts[k]
		switch k {
		case optSize:
			size = v
			req.Given[optSize] = true
		case optVolumeType:
			req.Opts.Type = v
			req.Given[optVolumeType] = true
		case optIOPS:
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < 0 {
				return req, fmt.Errorf("invalid iops %q: give a whole number, 0 or more", v)
			}
			req.Opts.IOPS = n
			req.Given[optIOPS] = true
		case optAZ:
			req.Opts.AvailabilityZone = v
			req.Given[optAZ] = true
		case optNewFSType, optFSType:
			if req.Opts.FSType, err = mount.ParseFSType(v); err != nil {
				return req, fmt.Errorf("invalid options: %w", err)
			}
			req.Given[optNewFSType] = true
		case optVolumeName, optVolumeID:
			if err := drivers.ValidateName(v); err != nil {
				return req, fmt.Errorf("source volume: %w", err)
			}
			req.Opts.FromVolume = v
			req.Given[optVolumeName] = true
		case optSnapName, optSnapID:
			if err := drivers.ValidateSnapshotName(v); err != nil {
				return req, fmt.Errorf("source snapshot: %w", err)
			}
			req.Opts.FromSnapshot = v
			req.Given[optSnapName] = true
		case optPool:
			if err := drivers.ValidateNameOf("pool", v); err != nil {
				return req, fmt.Errorf("pool: %w", err)
			}
			req.Opts.Pool = v
			req.Given[optPool] = true
		case optService:
			if err := drivers.ValidateName(v); err != nil {
				return req, fmt.Errorf("service: %w", err)
			}
			req.Service = v
		case optUID, optGID:
			n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			if err == nil {
				err = mount.CheckID(k, n)
			} else {
				err = fmt.Errorf("invalid %s %q: give a number, such as 1000", k, v)
			}
			if err != nil {
				return req, err
			}
			if k == optUID {
				req.Opts.UID = int(n)
			} else {
				req.Opts.GID = int(n)
			}
			req.Given[k] = true
		case optMode:
			m, err := mount.ParseMode(v)
			if err != nil {
				return req, err
			}
			req.Opts.Mode = mount.FormatMode(m)
			req.Given[optMode] = true
		case optMkfsOpts:
			mkfsOpts = v
			req.Given[optMkfsOpts] = true
		case optMountOpts:
			mountOpts = v
			req.Given[optMountOpts] = true
		case optOverwriteFS:
			b, err := strconv.ParseBool(v)
			if err != nil {
				return req, fmt.Errorf("invalid overwritefs %q: give true or false", v)
			}
			req.Overwrite = b
		case optEncrypted:
			b, err := strconv.ParseBool(strings.TrimSpace(v))
			if err != nil {
				return req, fmt.Errorf("invalid encrypted %q: give true or false", v)
			}
			req.Opts.Encrypted = b
			req.Given[optEncrypted] = true
		default:
			return req, fmt.Errorf("unknown option %q: accepted options are %s", k, strings.Join(Accepted(), ", "))
		}
	}
	// Checked for the filesystem asked for, once it is known; every mount
	// checks them again for the filesystem it finds.
	if req.Opts.MkfsOpts, err = mount.ParseMkfsOptions(req.Opts.FSType, mkfsOpts); err != nil {
		return req, fmt.Errorf("invalid mkfsopts: %w", err)
	}
	if req.Opts.MountOpts, err = mount.ParseMountOptions(req.Opts.FSType, mountOpts); err != nil {
		return req, fmt.Errorf("invalid mountopts: %w", err)
	}
	if req.Opts.FromVolume != "" && req.Opts.FromSnapshot != "" {
		return req, errors.New("give volumeName (a copy of a volume) or snapshotName (a copy of a snapshot), not both")
	}
	if (req.Opts.FromVolume != "" || req.Opts.FromSnapshot != "") && !req.Given[optSize] {
		return req, nil // a copy keeps its source's size and filesystem
	}
	if req.Opts.Size, err = ParseSize(size); err != nil {
		return req, err
	}
	if err := mount.CheckSize(req.Opts.FSType, req.Opts.Size); err != nil {
		return req, fmt.Errorf("invalid options: %w", err)
	}
	return req, nil
}

// KeepShape is the shape of a copy of a volume shaped as src: what the
// request gave, else the source's, whose filesystem and data folder the
// copy carries.
func KeepShape(r Request, src drivers.Shape) drivers.Shape {
	s := r.Opts.Shape
	if !r.Given[optUID] {
		s.UID = src.UID
	}
	if !r.Given[optGID] {
		s.GID = src.GID
	}
	if !r.Given[optMode] {
		s.Mode = src.Mode
	}
	if !r.Given[optMkfsOpts] {
		s.MkfsOpts = src.MkfsOpts
	}
	if !r.Given[optMountOpts] {
		s.MountOpts = src.MountOpts
	}
	return s
}

// lowerKeys folds the keys' case. The same key twice with different values
// (Size=1, size=2) is ambiguous and refused.
func lowerKeys(raw map[string]string) (map[string]string, error) {
	opts := make(map[string]string, len(raw))
	for _, k := range slices.Sorted(maps.Keys(raw)) {
		v := raw[k]
		lk := strings.ToLower(strings.TrimSpace(k))
		switch lk {
		case optFSType:
			lk = optNewFSType
		case optVolumeID:
			lk = optVolumeName
		case optSnapID:
			lk = optSnapName
		}
		if prev, ok := opts[lk]; ok && prev != v {
			return nil, fmt.Errorf("option %q is given twice with different values (%q and %q)", k, prev, v)
		}
		opts[lk] = v
	}
	return opts, nil
}

// ParseSize reads a size as REX-Ray did, a bare number of GB (GiB), or with a
// unit: 512MiB, 2G, 1.5GB (all binary multiples).
func ParseSize(s string) (int64, error) {
	s = strings.TrimSpace(s)
	bad := fmt.Errorf("invalid size %q: give a number of GB (16) or a size with a unit (512MiB, 2G)", s)
	tooLarge := fmt.Errorf("invalid size %q: too large", s)
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		switch {
		case math.IsNaN(f):
			return 0, bad
		case f <= 0:
			return 0, fmt.Errorf("invalid size %q: must be more than 0", s)
		case f > float64(math.MaxInt64/units.GiB): // +Inf too
			return 0, tooLarge
		case f*units.GiB < 1:
			return 0, fmt.Errorf("invalid size %q: less than one byte", s)
		}
		return int64(f * units.GiB), nil
	}
	n, err := units.RAMInBytes(s)
	if err != nil {
		return 0, bad
	}
	// RAMInBytes refuses negative numbers: a negative result is a number
	// too large for int64, wrapped in its conversion from float.
	if n < 0 {
		return 0, tooLarge
	}
	if n == 0 {
		return 0, fmt.Errorf("invalid size %q: must be more than 0", s)
	}
	return n, nil
}

// conflicts lists how an existing volume differs from what a repeated
// Create asks for, on the options the request gave.
func (r Request) Conflicts(v drivers.Volume) []string {
	var diffs []string
	add := func(key string, have, want any) {
		if r.Given[key] && have != want {
			diffs = append(diffs, fmt.Sprintf("%s is %v, not %v", key, have, want))
		}
	}
	add(optSize, size(v.Size), size(r.Opts.Size))
	add(optNewFSType, v.FSType, r.Opts.FSType)
	add(optVolumeType, v.Type, r.Opts.Type)
	add(optIOPS, v.IOPS, r.Opts.IOPS)
	add(optAZ, v.AvailabilityZone, r.Opts.AvailabilityZone)
	add(optVolumeName, v.Origin, r.Opts.FromVolume)
	add(optSnapName, v.Snapshot, r.Opts.FromSnapshot)
	add(optPool, v.Fields["pool"], r.Opts.Pool)
	add(optUID, v.UID, r.Opts.UID)
	add(optGID, v.GID, r.Opts.GID)
	add(optMode, v.Mode, r.Opts.Mode)
	add(optMkfsOpts, strings.Join(v.MkfsOpts, " "), strings.Join(r.Opts.MkfsOpts, " "))
	add(optMountOpts, strings.Join(v.MountOpts, ","), strings.Join(r.Opts.MountOpts, ","))
	add(optEncrypted, v.Encrypted, r.Opts.Encrypted)
	sort.Strings(diffs)
	return diffs
}

// size prints a byte count the way users give it.
type size int64

func (s size) String() string { return units.BytesSize(float64(s)) }

// CheckConfig refuses settings that would fail every Create or Mount, so
// the plugin fails at start with the setting's name instead.
func CheckConfig(cfg config.Config) error {
	d := DefaultsOf(cfg)
	size, err := ParseSize(d.Size)
	if err != nil {
		return fmt.Errorf("%s_CREATE_DEFAULT_SIZE: %w", config.OpsPrefix, err)
	}
	if err := mount.CheckSize(d.FSType, size); err != nil {
		return fmt.Errorf("default size and fs type (REXRAY_FSTYPE, %s_CREATE_DEFAULT_*): %w", config.OpsPrefix, err)
	}
	if !filepath.IsAbs(cfg.Ops.MountPath) {
		return fmt.Errorf("%s_MOUNT_PATH=%q: must be an absolute path", config.OpsPrefix, cfg.Ops.MountPath)
	}
	if root := cfg.RootPath(); root != "" && (!filepath.IsAbs(root) || filepath.Clean(root) != root) {
		return fmt.Errorf("volume root path %q (LINUX_VOLUME_ROOTPATH, %s_MOUNT_ROOTPATH): must be a clean absolute path such as /data", root, config.OpsPrefix)
	}
	return nil
}
