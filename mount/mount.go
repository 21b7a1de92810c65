package mount

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"
)

// Mounter mounts volumes at <Root>/<name> and hands out <Root>/<name><DataDir>.
type Mounter struct {
	Root     string      // the mount root, e.g. /var/lib/rexray/volumes
	DataDir  string      // inside the volume, e.g. /data; "" or "/" is the volume's root
	DataMode os.FileMode // mode of a new data directory
}

// Target is where the volume is mounted.
func (m *Mounter) Target(name string) string { return filepath.Join(m.Root, name) }

// Path is the directory handed to containers.
func (m *Mounter) Path(name string) string { return filepath.Join(m.Target(name), m.DataDir) }

// Content is what Mount may assume about a device that is not mounted yet.
type Content int

const (
	// Unknown: look for a filesystem, and format only when there is none.
	Unknown Content = iota
	// Discard: format without looking (REX-Ray's overwritefs).
	Discard
	// Zeros: the device reads as zeros from end to end, as a new sparse
	// image does: format without looking, and without zeroing again.
	Zeros
	// Existing: the device must hold a filesystem already; without one
	// that can be recognised, Mount fails with a *NoFilesystemError and
	// formats nothing.
	Existing
)

// NoFilesystemError is Mount's answer for a device that must hold a
// filesystem (Existing) and holds none that can be recognised.
type NoFilesystemError struct {
	Device string
}

func (e *NoFilesystemError) Error() string {
	return fmt.Sprintf("%s holds no filesystem that can be recognised", e.Device)
}

// CheckCommands are the commands that check an fsType filesystem on
// device without changing it, and that repair it, with a hint on the
// repair, for an error that tells the user what to run.
func CheckCommands(fsType, device string) (check, repair, hint string) {
	switch fsType {
	case "xfs":
		return "xfs_repair -n " + device, "xfs_repair " + device, ""
	default:
		// ext2/3/4. A damaged primary superblock leaves its backups:
		// mke2fs -n lists where they are, without writing anything.
		return "e2fsck -n " + device, "e2fsck -b <backup superblock> " + device, " (`mke2fs -n " + device + "` lists the backup superblocks)"
	}
}

// Mount mounts device at the volume's target, formatting it as spec's
// FSType first as its Content allows. It returns Path. A filesystem
// smaller than its device (its volume was grown) is grown once mounted;
// when that fails the volume stays mounted and the error is a *GrowError.
// Mounting a mounted volume only ensures the data directory.
func (m *Mounter) Mount(ctx context.Context, device, name string, spec Spec) (string, error) {
	target := m.Target(name)
	// Errors name the device and target; the caller names the volume.
	mounted, err := m.IsMounted(name)
	if err != nil {
		return "", err
	}
	grow := false
	if !mounted {
		if grow, err = m.mount(ctx, device, target, spec); err != nil {
			return "", err
		}
	}
	err = m.ensureDataDir(name, spec.Owner)
	var growErr error
	if err == nil && grow {
		// Its volume grew while it was not mounted here.
		if gerr := m.Grow(ctx, device, name); gerr != nil {
			growErr = &GrowError{gerr}
		}
	}
	if err == nil && !mounted && slices.Contains(spec.MountOpts, "ro") {
		err = m.readOnly(target)
	}
	if err != nil {
		if !mounted {
			unix.Unmount(target, 0)
			os.Remove(target)
		}
		return "", err
	}
	return m.Path(name), growErr
}

// mount mounts device at target, and tells whether the filesystem it
// found is smaller than the device.
func (m *Mounter) mount(ctx context.Context, device, target string, spec Spec) (grow bool, err error) {
	found := ""
	if spec.Content == Unknown || spec.Content == Existing {
		if found, err = Probe(ctx, device); err != nil {
			return false, err
		}
		grow = found != "" && smallerThanDevice(device)
	}
	if grow && found == "ext4" {
		// Offline, before the mount: resize2fs needs no CAP_SYS_RESOURCE
		// on an unmounted filesystem. Failing that, online once mounted.
		if _, err := run(ctx, "resize2fs", device); err == nil {
			grow = false
		}
	}
	if found == "" && spec.Content == Existing {
		return false, &NoFilesystemError{Device: device}
	}
	if found == "" {
		if err := Format(ctx, device, spec.FSType, spec.Content == Zeros, spec.MkfsOpts...); err != nil {
			return false, err
		}
		found = spec.FSType
	}
	// The options of a filesystem this package cannot make are refused,
	// and none are needed.
	var flags uintptr
	var data string
	if _, known := filesystems[found]; known {
		if err := CheckMountOptions(found, spec.MountOpts); err != nil {
			return false, err
		}
		flags, data = mountArgs(found, spec.MountOpts)
	} else if len(spec.MountOpts) > 0 {
		return false, fmt.Errorf("mount %s: it holds %s, which takes no mount options from rexray (%s given)", device, found, strings.Join(spec.MountOpts, ","))
	}
	if err := os.MkdirAll(target, 0o755); err != nil {
		return false, err
	}
	// Read-only comes last, once the data directory is made.
	if err := unix.Mount(device, target, found, flags&^unix.MS_RDONLY, data); err != nil {
		os.Remove(target)
		return false, fmt.Errorf("mount %s (%s) on %s: %w", device, found, target, err)
	}
	debugf(ctx, "mounted %s (%s) on %s", device, found, target)
	return grow, nil
}

// readOnly remounts target read-only, keeping its other flags and data.
func (m *Mounter) readOnly(target string) error {
	var st unix.Statfs_t
	if err := unix.Statfs(target, &st); err != nil {
		return &os.PathError{Op: "statfs", Path: target, Err: err}
	}
	flags := uintptr(unix.MS_REMOUNT | unix.MS_RDONLY)
	for _, f := range []struct{ st, ms uintptr }{{unix.ST_NOSUID, unix.MS_NOSUID}, {unix.ST_NODEV, unix.MS_NODEV}, {unix.ST_NOEXEC, unix.MS_NOEXEC}, {unix.ST_NOATIME, unix.MS_NOATIME}, {unix.ST_NODIRATIME, unix.MS_NODIRATIME}, {unix.ST_RELATIME, unix.MS_RELATIME}} {
		if uintptr(st.Flags)&f.st != 0 {
			flags |= f.ms
		}
	}
	if err := unix.Mount("", target, "", flags, ""); err != nil {
		return fmt.Errorf("remount %s read-only: %w", target, err)
	}
	return nil
}

// ensureDataDir makes the data directory, owned and with the mode o
// gives, unless it is there: a user may have changed it since. A data
// directory that is the volume's root is the filesystem's, made by mkfs:
// it takes o's owner and mode while it is empty (just made).
func (m *Mounter) ensureDataDir(name string, o Owner) error {
	dir := m.Path(name)
	mode := o.Mode
	if mode == 0 {
		mode = m.DataMode
	}
	if dir == m.Target(name) {
		return m.shapeRoot(dir, o, mode)
	}
	if _, err := os.Lstat(dir); err == nil {
		return nil
	}
	if err := os.MkdirAll(dir, mode); err != nil {
		return fmt.Errorf("create data directory %s: %w", dir, err)
	}
	// MkdirAll is subject to the umask; the configured mode is not.
	if err := setOwner(dir, o, mode); err != nil {
		return fmt.Errorf("create data directory: %w", err)
	}
	return nil
}

// shapeRoot gives a new filesystem's root o's owner and mode: one that
// holds nothing but what mkfs makes (lost+found) is new.
func (m *Mounter) shapeRoot(dir string, o Owner, mode os.FileMode) error {
	if o == (Owner{}) {
		return nil
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("read volume root %s: %w", dir, err)
	}
	if len(entries) > 1 || len(entries) == 1 && entries[0].Name() != "lost+found" {
		return nil
	}
	var st unix.Stat_t
	if err := unix.Lstat(dir, &st); err != nil {
		return &os.PathError{Op: "lstat", Path: dir, Err: err}
	}
	if int(st.Uid) == o.UID && int(st.Gid) == o.GID && os.FileMode(st.Mode).Perm() == mode {
		return nil
	}
	return setOwner(dir, o, mode)
}

// setOwner chowns and chmods dir without following a link.
func setOwner(dir string, o Owner, mode os.FileMode) error {
	if err := os.Lchown(dir, o.UID, o.GID); err != nil {
		return err
	}
	return os.Chmod(dir, mode)
}

// Unmount unmounts the volume and removes its empty target directory.
// Unmounting a volume that is not mounted is not an error.
func (m *Mounter) Unmount(ctx context.Context, name string) error {
	if err := m.UnmountOnly(ctx, name); err != nil {
		return err
	}
	return m.RemoveTarget(name)
}

// UnmountOnly unmounts the volume and leaves its target directory, for
// RemoveTarget to remove: a caller may detach the device meanwhile, since
// the directory lies on another filesystem (the host's), whose journal it
// may have to wait for. Unmounting a volume that is not mounted is not an
// error.
func (m *Mounter) UnmountOnly(ctx context.Context, name string) error {
	target := m.Target(name)
	err := unix.Unmount(target, 0)
	switch {
	case err == nil, errors.Is(err, unix.EINVAL), errors.Is(err, unix.ENOENT):
		// EINVAL: not a mount point; ENOENT: no such directory.
	default:
		return fmt.Errorf("unmount %s: %w", target, err)
	}
	debugf(ctx, "unmounted %s", target)
	return nil
}

// RemoveTarget removes the volume's empty target directory, once it is
// unmounted; one that is not there is not an error.
func (m *Mounter) RemoveTarget(name string) error {
	target := m.Target(name)
	if err := os.Remove(target); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("unmount %s: remove mount point: %w", target, err)
	}
	return nil
}

// Mounted maps the name of every volume mounted under Root to its source.
func (m *Mounter) Mounted() (map[string]string, error) {
	mounts, err := mountinfo.GetMounts(func(i *mountinfo.Info) (skip, stop bool) {
		return filepath.Dir(i.Mountpoint) != m.Root, false
	})
	if err != nil {
		return nil, fmt.Errorf("read mounts: %w", err)
	}
	names := make(map[string]string, len(mounts))
	for _, i := range mounts {
		names[filepath.Base(i.Mountpoint)] = i.Source
	}
	return names, nil
}

// IsMounted tells whether the volume is mounted at its target.
func (m *Mounter) IsMounted(name string) (bool, error) { return IsMountPoint(m.Target(name)) }

// The fsfreeze ioctls, _IOWR('X', 119, int) and _IOWR('X', 120, int).
const (
	fiFreeze = 0xC0045877
	fiThaw   = 0xC0045878
)

// Freeze blocks writes to a mounted volume and flushes it, so its device
// can be copied whole; thaw lets writers go on. A volume that is not
// mounted is still already: thaw is then a no-op.
func (m *Mounter) Freeze(name string) (thaw func() error, err error) {
	mounted, err := m.IsMounted(name)
	if err != nil || !mounted {
		return func() error { return nil }, err
	}
	f, err := os.Open(m.Target(name))
	if err != nil {
		return nil, fmt.Errorf("freeze %s: %w", name, err)
	}
	if err := unix.IoctlSetInt(int(f.Fd()), fiFreeze, 0); err != nil {
		f.Close()
		return nil, fmt.Errorf("freeze %s: %w", name, err)
	}
	return func() error {
		defer f.Close()
		if err := unix.IoctlSetInt(int(f.Fd()), fiThaw, 0); err != nil {
			return fmt.Errorf("thaw %s: %w", name, err)
		}
		return nil
	}, nil
}

// fsIocShutdown is FS_IOC_SHUTDOWN (_IOR('X', 125, __u32)): ext4 and xfs
// stop all I/O. With fsGoingDefault the filesystem is first frozen, so
// everything acknowledged is on the device, consistent, before it stops.
const (
	fsIocShutdown     = 0x8004587d
	fsGoingDefault    = 0
	fsGoingNoLogFlush = 2
)

// Halt stops every write to a mounted volume at once: the filesystem is
// shut down without the flush Fence does first, which would wait for a
// device whose store stopped answering and would acknowledge, late, writes
// that then reach it after another host took the volume over. What was
// acknowledged before stays; what was in flight fails. A volume not
// mounted here needs nothing; Fence still unmounts it.
func (m *Mounter) Halt(name string) error {
	mounted, err := m.IsMounted(name)
	if err != nil || !mounted {
		return err
	}
	f, err := os.Open(m.Target(name))
	if err != nil {
		return fmt.Errorf("halt %s: %w", name, err)
	}
	defer f.Close()
	if err := unix.IoctlSetPointerInt(int(f.Fd()), fsIocShutdown, fsGoingNoLogFlush); err != nil {
		return fmt.Errorf("halt %s: shut the filesystem down: %w", name, err)
	}
	return nil
}

// Fence cuts this host off a mounted volume that another host has taken
// over: the filesystem is flushed and shut down, so every later write by a
// container that still holds it fails instead of reaching the device, and
// then it is unmounted lazily (the containers keep their now-dead files).
// A volume not mounted here needs nothing.
func (m *Mounter) Fence(ctx context.Context, name string) error {
	mounted, err := m.IsMounted(name)
	if err != nil || !mounted {
		return err
	}
	target := m.Target(name)
	// A device already cut off (an rbd client another host blocklisted)
	// fails the shutdown's flush: the unmount goes ahead all the same.
	var shutErr error
	if f, err := os.Open(target); err == nil {
		if err := unix.IoctlSetPointerInt(int(f.Fd()), fsIocShutdown, fsGoingDefault); err != nil {
			shutErr = fmt.Errorf("fence %s: shut the filesystem down: %w", name, err)
		}
		f.Close()
	}
	if err := unix.Unmount(target, unix.MNT_DETACH); err != nil {
		return errors.Join(shutErr, fmt.Errorf("fence %s: unmount: %w", name, err))
	}
	os.Remove(target)
	debugf(ctx, "shut down and detached %s (%v)", target, shutErr)
	return shutErr
}

// Busy tells whether a filesystem on device is mounted anywhere on this
// host, in any mount namespace. A container's bind of a volume lives in the
// container's namespace, which /proc/self/mountinfo does not show; but a
// mounted filesystem holds its block device exclusively as long as any
// mount of it lasts, so an exclusive open of the device fails with EBUSY
// until the last one ends. Another exclusive opener (mkfs) reads as busy
// too, which errs on the safe side.
func Busy(device string) (bool, error) {
	fd, err := unix.Open(device, unix.O_RDONLY|unix.O_EXCL|unix.O_CLOEXEC, 0)
	if errors.Is(err, unix.EBUSY) {
		return true, nil
	}
	if err != nil {
		return false, &os.PathError{Op: "open exclusively", Path: device, Err: err}
	}
	unix.Close(fd)
	return false, nil
}

// Busy is the package's Busy, for callers that hold a Mounter.
func (m *Mounter) Busy(device string) (bool, error) { return Busy(device) }

// Usage is the use of the volume's filesystem, mounted at its target.
func (m *Mounter) Usage(name string) (Usage, error) { return UsageOf(m.Target(name)) }
